//! `devloop render`: config + images (built, from a file, or given) → the exact objects devloop would apply, as
//! multi-document YAML on stdout or in a file.

use std::collections::BTreeMap;

use crate::cli::{GlobalArgs, RenderArgs};
use crate::config::Config;
use crate::error::Error;
use crate::event::{BuiltArtifact, Event};
use crate::output::Console;
use crate::render::{self, ArtifactImage, RenderRequest};
use crate::settings::{BuildFlags, Destination, Settings};

/// Runs `devloop render`.
pub async fn run(global: &GlobalArgs, args: RenderArgs, console: Console) -> Result<(), Error> {
    let cfg = super::load_config(global, "render", &console)?;
    let flags = BuildFlags {
        push: args.push,
        ..Default::default()
    };
    let settings = Settings::resolve(global, flags, None, &cfg, Destination::Render);
    let images = super::resolve_images(&cfg, &args.source, &settings, &console).await?;
    // Offline: only `-n` gives a namespace (and then, as with kubectl, objects naming another one are refused).
    let namespace = global.namespace.as_deref();
    let yaml =
        render_objects(&cfg, &images, namespace, namespace.is_some(), &console)?.to_yaml()?;
    match &args.output_file {
        Some(path) => std::fs::write(path, yaml)
            .map_err(|e| Error::Io(format!("{}: cannot write: {e}", path.display())))?,
        None => console.data(&yaml),
    }
    Ok(())
}

/// Renders the config's manifests with `images` (`namespace` for objects that name none; `explicit` when it
/// came from `-n`); warnings become events.
pub fn render_objects(
    cfg: &Config,
    images: &[ArtifactImage],
    namespace: Option<&str>,
    explicit: bool,
    console: &Console,
) -> Result<render::Rendered, Error> {
    let rendered = render_quietly(cfg, images, namespace, explicit)?;
    for w in &rendered.warnings {
        console.sink().emit(Event::Warning {
            message: w.to_string(),
        });
    }
    Ok(rendered)
}

/// [`render_objects`] without reporting warnings: for the objects' names and namespaces, which do not depend on
/// the images (rendered with none, an artifact is "unused", which is not worth telling).
pub fn render_quietly(
    cfg: &Config,
    images: &[ArtifactImage],
    namespace: Option<&str>,
    explicit: bool,
) -> Result<render::Rendered, Error> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let labels = crate::labels::kube_labels(&cfg.project);
    Ok(render::render(&RenderRequest {
        base_dir: &cfg.base_dir,
        manifests: &cfg.manifests,
        images,
        labels: &labels,
        namespace,
        namespace_explicit: explicit,
        env: &env,
    })?)
}

pub(super) fn parse_image_flag(s: &str) -> Result<BuiltArtifact, Error> {
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
