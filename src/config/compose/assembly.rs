//! Compose import, assembly: the drafts of every service → one devloop config. Resolves what spans services:
//! artifacts shared between them, image references to built images, dependencies, profiles and the one stop
//! grace period; records a finding for what cannot be carried over. Reads nothing.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{Assembled, Cx, DependsDraft, Draft, ServiceOutcome};
use crate::config::API_VERSION;
use crate::config::deploy::{RawContainer, RawDependsOn, RawDeploy, RawDockerDeploy};
use crate::config::raw::{RawArtifact, RawBuild, RawConfig, RawMetadata, RawProfile};
use crate::tag;

/// The artifacts the services build, and who builds and runs what.
#[derive(Default)]
struct Artifacts {
    /// By name, first definition wins.
    artifacts: Vec<RawArtifact>,
    /// Compose image references of built images → artifact names.
    built_refs: BTreeMap<(String, String), String>,
    /// Service → the artifact its build makes.
    artifact_of: BTreeMap<String, String>,
    /// The first service (in file order) whose build makes each artifact.
    builder_of: BTreeMap<String, String>,
}

/// The containers, split into those that always run and those of each profile (with the artifacts it uses).
#[derive(Default)]
struct Placed {
    base_containers: Vec<RawContainer>,
    profiled: BTreeMap<String, (Vec<RawContainer>, Vec<String>)>,
    outcomes: Vec<ServiceOutcome>,
}

impl Cx<'_> {
    /// Resolves artifacts shared between services, image references to built images, dependencies and profiles.
    pub(super) fn assemble(&mut self, drafts: Vec<Draft>) -> Assembled {
        let artifacts = self.artifacts(&drafts);
        let converted: BTreeMap<String, Vec<String>> = drafts
            .iter()
            .filter(|d| d.container.is_some())
            .map(|d| (d.service.clone(), d.profiles.clone()))
            .collect();
        let grace = self.stop_grace_period(&drafts);
        let placed = self.place(drafts, &artifacts, &converted);
        let Placed {
            base_containers,
            profiled,
            outcomes,
        } = placed;
        // An artifact used only by profiled containers is built only in those profiles.
        let base_images: BTreeSet<&str> =
            base_containers.iter().map(|c| c.image.as_str()).collect();
        let (base_artifacts, profile_only): (Vec<RawArtifact>, Vec<RawArtifact>) = artifacts
            .artifacts
            .into_iter()
            .partition(|a| base_images.contains(a.image.as_str()));
        let profiles = profiles(&profiled, &profile_only);
        let profile_names = profiles.iter().map(|p| p.name.clone()).collect();
        let config = RawConfig {
            api_version: Some(API_VERSION.to_string()),
            kind: Some("Config".to_string()),
            metadata: Some(RawMetadata {
                name: Some(self.project.clone()),
            }),
            build: (!base_artifacts.is_empty()).then(|| RawBuild {
                artifacts: Some(base_artifacts),
                ..Default::default()
            }),
            manifests: None,
            deploy: Some(RawDeploy {
                kubernetes: None,
                docker: Some(RawDockerDeploy {
                    containers: base_containers,
                    stop_grace_period: grace,
                }),
                hooks: None,
            }),
            port_forward: None,
            profiles: (!profiles.is_empty()).then_some(profiles),
        };
        Assembled {
            config,
            services: outcomes,
            profiles: profile_names,
        }
    }

    /// The artifacts the converted services build; a second, different build of the same image is noted.
    fn artifacts(&mut self, drafts: &[Draft]) -> Artifacts {
        let mut out = Artifacts::default();
        for d in drafts {
            let Some(b) = &d.build else { continue };
            if d.container.is_none() {
                continue;
            }
            match out.artifacts.iter().find(|a| a.image == b.name) {
                Some(existing) => {
                    if !same_build(existing, &b.artifact) {
                        let first = out.builder_of.get(&b.name).cloned().unwrap_or_default();
                        self.note(
                            &format!("{}.build", d.service),
                            format!("builds the same image `{}` as `{first}` but differently; devloop builds it once, as `{first}` does", b.name),
                        );
                    }
                }
                None => out.artifacts.push(b.artifact.clone()),
            }
            out.artifact_of.insert(d.service.clone(), b.name.clone());
            out.builder_of
                .entry(b.name.clone())
                .or_insert_with(|| d.service.clone());
            if let Some(img) = &d.image
                && let Some(key) = image_key(img)
            {
                out.built_refs.insert(key, b.name.clone());
            }
            if let Some(key) = image_key(&b.name) {
                out.built_refs.entry(key).or_insert_with(|| b.name.clone());
            }
        }
        out
    }

    /// Stop grace period: one for all containers.
    fn stop_grace_period(&mut self, drafts: &[Draft]) -> Option<u64> {
        let graces: Vec<(String, u64)> = drafts
            .iter()
            .filter_map(|d| d.stop_grace_secs.map(|g| (d.service.clone(), g)))
            .collect();
        // No container may be killed sooner than under compose (whose default is 10s): the longest wins.
        let effective = |d: &Draft| d.stop_grace_secs.unwrap_or(10);
        let grace = (!graces.is_empty()).then(|| {
            drafts
                .iter()
                .filter(|d| d.container.is_some())
                .map(effective)
                .max()
                .unwrap_or(10)
        });
        if let Some(g) = grace {
            let all_same = drafts
                .iter()
                .filter(|d| d.container.is_some())
                .all(|d| effective(d) == g);
            if !all_same {
                for (service, _) in &graces {
                    self.note(
                        &format!("{service}.stop_grace_period"),
                        format!("devloop has one `stopGracePeriod` for all containers: {g}s, the longest of them (compose's default is 10s)"),
                    );
                }
            }
        }
        grace
    }

    /// Each service's container, running built images by their artifact name, with its dependencies, placed in
    /// the base config or in its profiles; and what became of each service.
    fn place(
        &mut self,
        drafts: Vec<Draft>,
        artifacts: &Artifacts,
        converted: &BTreeMap<String, Vec<String>>,
    ) -> Placed {
        let mut placed = Placed::default();
        for d in drafts {
            let Some(mut c) = d.container else {
                placed.outcomes.push(ServiceOutcome {
                    service: d.service,
                    container: None,
                    image: None,
                    artifact: None,
                    built_by: None,
                    profiles: Vec::new(),
                });
                continue;
            };
            if d.build.is_none()
                && let Some(key) = image_key(&c.image)
                && let Some(artifact) = artifacts.built_refs.get(&key)
            {
                c.image = artifact.clone();
            }
            for dep in d.depends_on {
                self.depend(&mut c, dep, &d.profiles, converted);
            }
            let runs = artifacts
                .artifacts
                .iter()
                .any(|a| a.image == c.image)
                .then(|| c.image.clone());
            let built_by = runs.as_ref().and_then(|a| {
                if artifacts.artifact_of.get(&d.service) == Some(a) {
                    Some(d.service.clone())
                } else {
                    artifacts.builder_of.get(a).cloned()
                }
            });
            placed.outcomes.push(ServiceOutcome {
                service: d.service.clone(),
                container: Some(c.name.clone()),
                image: Some(c.image.clone()),
                artifact: runs,
                built_by,
                profiles: d.profiles.clone(),
            });
            if d.profiles.is_empty() {
                placed.base_containers.push(c);
            } else {
                for p in &d.profiles {
                    let entry = placed.profiled.entry(p.clone()).or_default();
                    entry.0.push(c.clone());
                    if let Some(a) = artifacts.artifact_of.get(&d.service)
                        && !entry.1.contains(a)
                    {
                        entry.1.push(a.clone());
                    }
                }
            }
        }
        placed
    }

    /// Adds one `depends_on` entry to the container, unless the dependency is not converted or may not run
    /// whenever the container runs (recorded).
    fn depend(
        &mut self,
        c: &mut RawContainer,
        dep: DependsDraft,
        profiles: &[String],
        converted: &BTreeMap<String, Vec<String>>,
    ) {
        let Some(dep_profiles) = converted.get(dep.service.as_str()) else {
            self.skip(
                &dep.at,
                format!(
                    "`{}` is not converted (or not a service of this file)",
                    dep.service
                ),
            );
            return;
        };
        // The dependency must run whenever this container runs.
        let runs = dep_profiles.is_empty()
            || (!profiles.is_empty() && profiles.iter().all(|p| dep_profiles.contains(p)));
        if !runs {
            self.skip(
                &dep.at,
                format!(
                    "`{}` runs only with {}, this container also without",
                    dep.service,
                    dep_profiles
                        .iter()
                        .map(|p| format!("`-p {p}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            );
            return;
        }
        c.depends_on.push(RawDependsOn {
            name: dep.service,
            condition: dep.condition,
        });
    }
}

/// One devloop profile per compose profile: its containers, and the artifacts only its containers use.
fn profiles(
    profiled: &BTreeMap<String, (Vec<RawContainer>, Vec<String>)>,
    profile_only: &[RawArtifact],
) -> Vec<RawProfile> {
    profiled
        .iter()
        .map(|(name, (containers, arts))| {
            let own: Vec<RawArtifact> = profile_only
                .iter()
                .filter(|a| arts.contains(&a.image))
                .cloned()
                .collect();
            RawProfile {
                name: name.clone(),
                build: (!own.is_empty()).then(|| RawBuild {
                    artifacts: Some(own),
                    ..Default::default()
                }),
                deploy: Some(RawDeploy {
                    kubernetes: None,
                    docker: Some(RawDockerDeploy {
                        containers: containers.clone(),
                        stop_grace_period: None,
                    }),
                    hooks: None,
                }),
                ..Default::default()
            }
        })
        .collect()
}

/// Two builds of the same image are the same build when everything but the name matches.
fn same_build(a: &RawArtifact, b: &RawArtifact) -> bool {
    serde_json::to_value(a).ok().map(strip_image) == serde_json::to_value(b).ok().map(strip_image)
}

fn strip_image(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("image");
    }
    v
}

/// `(normalized repository, tag)` with Docker's default tag, so `shop-api` and `docker.io/library/shop-api:latest`
/// are the same image.
fn image_key(reference: &str) -> Option<(String, String)> {
    let r = tag::parse(reference).ok()?;
    if r.digest.is_some() {
        return None;
    }
    Some((
        tag::normalize_repository(&r.repository),
        r.tag_or_default().to_string(),
    ))
}
