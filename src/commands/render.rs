//! `devloop render`: config + images (built, from a file, or given) → the exact objects devloop would apply, as
//! multi-document YAML on stdout or in a file.

use std::collections::BTreeMap;

use crate::build::artifacts;
use crate::cli::{GlobalArgs, RenderArgs};
use crate::config::Config;
use crate::error::Error;
use crate::event::{BuiltArtifact, Event};
use crate::output::Console;
use crate::render::{self, ArtifactImage, RenderRequest};
use crate::runner::BuildOptions;
use crate::tag;

/// The label every object devloop renders carries.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "devloop");
/// The label naming the project (stable across runs, so restarts do not roll workloads).
pub const PROJECT_LABEL: &str = "devloop.dev/project";

/// Runs `devloop render`.
pub async fn run(global: &GlobalArgs, args: RenderArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "render", &console)?;
    let images = images(&cfg, global, &args, &console).await?;
    let yaml = render_yaml(&cfg, &images, args.namespace.as_deref(), &console)?;
    match &args.output_file {
        Some(path) => std::fs::write(path, yaml)
            .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))?,
        None => console.data(&yaml),
    }
    Ok(())
}

/// The labels devloop puts on every object of `cfg`'s project.
pub fn labels(cfg: &Config) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (PROJECT_LABEL.to_string(), cfg.project.clone()),
    ])
}

/// Renders the config's manifests with `images`; warnings become events.
pub fn render_yaml(
    cfg: &Config,
    images: &[ArtifactImage],
    namespace: Option<&str>,
    console: &Console,
) -> Result<String, Error> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let labels = labels(cfg);
    let rendered = render::render(&RenderRequest {
        base_dir: &cfg.base_dir,
        manifests: &cfg.manifests,
        images,
        labels: &labels,
        namespace,
        env: &env,
    })?;
    for w in &rendered.warnings {
        console.sink().emit(Event::Warning {
            message: w.to_string(),
        });
    }
    Ok(rendered.to_yaml()?)
}

/// Where the images come from: `--build-artifacts`, `--images`, or the same cached build as `devloop build`.
async fn images(
    cfg: &Config,
    global: &GlobalArgs,
    args: &RenderArgs,
    console: &Console,
) -> Result<Vec<ArtifactImage>, Error> {
    let given: Vec<BuiltArtifact> = if let Some(file) = &args.build_artifacts {
        artifacts::read(file)?
    } else if !args.images.is_empty() {
        args.images
            .iter()
            .map(|s| parse_image_flag(s))
            .collect::<Result<_, _>>()?
    } else {
        let opts = BuildOptions {
            push: args.push,
            default_repo: global.default_repo.clone(),
            deploy_tags: true,
            ..Default::default()
        };
        let built = super::build::build(cfg, &opts, console).await?;
        return Ok(built
            .iter()
            .map(|r| ArtifactImage {
                name: r.image.clone(),
                reference: r.deploy_reference(),
                repository: r.repository.clone(),
                tag: r.deploy_tag(),
                digest: r.digest.clone(),
            })
            .collect());
    };
    given
        .into_iter()
        .map(|b| {
            let parsed = tag::parse(&b.tag)?;
            Ok(ArtifactImage {
                name: b.image,
                reference: b.tag.clone(),
                repository: parsed.repository,
                tag: parsed.tag.unwrap_or_else(|| "latest".to_string()),
                digest: parsed.digest,
            })
        })
        .collect()
}

fn parse_image_flag(s: &str) -> Result<BuiltArtifact, Error> {
    match s.split_once('=') {
        Some((name, reference)) if !name.is_empty() && !reference.is_empty() => Ok(BuiltArtifact {
            image: name.trim().to_string(),
            tag: reference.trim().to_string(),
        }),
        _ => Err(Error::Usage {
            message: format!("--images: `{s}` is not `name=reference`"),
            hint: Some(
                "e.g. `--images app-api=registry.local/app-api:v1,worker=registry.local/worker:v1`"
                    .into(),
            ),
        }),
    }
}
