//! Deploy, Kubernetes backend, file sync: a [`SyncRequest`] → the files written into (and deleted from) every
//! running container of this project's pods whose image is the artifact's deployed reference, in every namespace
//! of this deployment, over the exec API. The transport is decided once per container and remembered: `tar`
//! driven by a shell when the container has both, else the shell alone (`head -c` into a temporary name). Files
//! are written under a temporary name and renamed, so a reader never sees half a file. What was synced since the
//! image was built is remembered, so a container that starts later from that image (a replaced pod, a restart)
//! is brought up to date at the next sync. Touches no container of another image or project.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::future::join_all;

use super::exec::{ExecOutcome, ExecOutput, RunningPod};
use super::{KubePlan, KubeTarget, namespaces_of};
use crate::config::hooks::Hook;
use crate::deploy::{DeployError, SyncFile, SyncRequest};

/// How files reach one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// `sh` runs `tar -x` on the archive sent to stdin, then renames.
    TarShell,
    /// `sh` alone: one exec per file, `head -c N` into a temporary name, `chmod`, rename.
    Shell,
    /// Neither `tar` nor `sh`: files cannot be synced into it.
    Unavailable,
}

/// One container, as a process of the container runtime: a restart or a new pod is another one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ContainerKey {
    pub pod_uid: String,
    pub container: String,
    pub restarts: i32,
}

/// What was synced into the containers of one artifact's image since it was built.
#[derive(Debug, Default)]
pub(super) struct SyncedImage {
    /// The deployed reference the files were synced into.
    reference: String,
    /// Container path → the file now there (`None`: deleted).
    files: BTreeMap<String, Option<SyncFile>>,
    /// The containers that have every file of `files`.
    up_to_date: HashSet<ContainerKey>,
}

/// Sync memory of a target: transports per container, what each artifact's image had synced.
#[derive(Debug, Default)]
pub(super) struct SyncMemory {
    pub transports: HashMap<ContainerKey, Transport>,
    /// By artifact image name.
    pub images: HashMap<String, SyncedImage>,
}

impl SyncMemory {
    /// Whether files were synced into artifact `image`'s containers since `reference` was deployed.
    fn has_synced(&self, image: &str, reference: &str) -> bool {
        self.images
            .get(image)
            .is_some_and(|s| s.reference == reference && !s.files.is_empty())
    }
}

/// A container to bring up to date, and with what.
struct Job {
    ns: String,
    pod: String,
    key: ContainerKey,
    copy: Vec<SyncFile>,
    delete: Vec<String>,
}

/// A shell script for [`Transport::TarShell`] (`TAR_OWNER` is `o` unless a file has a `--chown` owner, carried in
/// the archive by ID): `$1` is the archive's size, `$2` the number of renames, then pairs
/// `tmp dest`, then the paths to delete. The archive names the temporary paths (relative to `/`). `head -c` hands
/// tar exactly the archive: stdin stays open (protocol v4 cannot close it alone), and busybox's tar reads on to
/// the end of its input.
const TAR_SCRIPT: &str = r#"set -e
size=$1; n=$2; shift 2
if [ "$n" -gt 0 ]; then head -c "$size" | tar -xm$TAR_OWNER -f - -C /; fi
while [ "$n" -gt 0 ]; do mv -f "$1" "$2"; shift 2; n=$((n-1)); done
if [ $# -gt 0 ]; then rm -f -- "$@"; fi
"#;

/// A shell script for [`Transport::Shell`], one file: `$1` dir, `$2` size, `$3` temporary path, `$4` mode, `$5`
/// destination, `$6` the `uid:gid` owner or empty; the content on stdin.
const SHELL_FILE_SCRIPT: &str = r#"set -e; mkdir -p "$1"; head -c "$2" > "$3"; chmod "$4" "$3"; if [ -n "$6" ]; then chown "$6" "$3"; fi; mv -f "$3" "$5""#;

/// A shell script deleting its arguments.
const SHELL_DELETE_SCRIPT: &str = r#"rm -f -- "$@""#;

impl KubeTarget {
    /// `sync`: see the module doc. Returns how many containers were brought up to date (0: none runs the image).
    pub(super) async fn sync_containers(
        &self,
        plan: &KubePlan,
        req: &SyncRequest<'_>,
    ) -> Result<usize, DeployError> {
        let empty = req.copy.is_empty() && req.delete.is_empty() && req.hooks.is_empty();
        // An empty request only brings later containers up to date: nothing to do (and no pod list to read after
        // every deploy) when nothing was synced into this image.
        if empty
            && !self
                .sync_memory
                .lock()
                .await
                .has_synced(req.image, &req.reference)
        {
            return Ok(0);
        }
        let home = self.home_namespace(&plan.objects);
        let namespaces = namespaces_of(&plan.objects, &home);
        let pods = self.running_pods(&namespaces).await?;
        let jobs = self.jobs(&pods, req).await;
        if jobs.is_empty() {
            return Ok(0);
        }
        let results = join_all(jobs.iter().map(|job| self.bring_up_to_date(job, req))).await;
        let mut memory = self.sync_memory.lock().await;
        let synced = memory.images.entry(req.image.to_string()).or_default();
        for (job, result) in jobs.iter().zip(&results) {
            if result.is_ok() {
                synced.up_to_date.insert(job.key.clone());
            } else {
                synced.up_to_date.remove(&job.key);
            }
        }
        crate::deploy::all_or_errors(results, "containers could not be synced").map(|ok| ok.len())
    }

    /// Records `req` in what the image had synced, and makes a job per running container of the image: the
    /// request's files for containers that are up to date, everything synced since the build for the others.
    async fn jobs(&self, pods: &[RunningPod], req: &SyncRequest<'_>) -> Vec<Job> {
        let mut memory = self.sync_memory.lock().await;
        // Forget containers that no longer run (replaced pods, earlier restarts): a long session stays small.
        let running: HashSet<ContainerKey> = pods
            .iter()
            .flat_map(|p| {
                p.containers.iter().map(|c| ContainerKey {
                    pod_uid: p.uid.clone(),
                    container: c.name.clone(),
                    restarts: c.restarts,
                })
            })
            .collect();
        memory.transports.retain(|k, _| running.contains(k));
        for synced in memory.images.values_mut() {
            synced.up_to_date.retain(|k| running.contains(k));
        }
        let synced = memory.images.entry(req.image.to_string()).or_default();
        // A new image (rebuilt, or deployed under another reference) has none of what was synced before.
        if synced.reference != req.reference {
            *synced = SyncedImage {
                reference: req.reference.clone(),
                ..SyncedImage::default()
            };
        }
        for f in &req.copy {
            synced.files.insert(f.dest.clone(), Some(f.clone()));
        }
        for d in &req.delete {
            synced.files.insert(d.clone(), None);
        }
        let mut jobs = Vec::new();
        for pod in pods {
            for c in pod
                .containers
                .iter()
                .filter(|c| runs(&c.image, &req.reference))
            {
                let key = ContainerKey {
                    pod_uid: pod.uid.clone(),
                    container: c.name.clone(),
                    restarts: c.restarts,
                };
                let (copy, delete) = if synced.up_to_date.contains(&key) {
                    (req.copy.clone(), req.delete.clone())
                } else {
                    everything(&synced.files)
                };
                if copy.is_empty() && delete.is_empty() && req.hooks.is_empty() {
                    continue;
                }
                jobs.push(Job {
                    ns: pod.namespace.clone(),
                    pod: pod.name.clone(),
                    key,
                    copy,
                    delete,
                });
            }
        }
        jobs
    }

    /// Container hooks before, the files, container hooks after, for one container.
    async fn bring_up_to_date(&self, job: &Job, req: &SyncRequest<'_>) -> Result<(), DeployError> {
        self.run_hooks(job, &req.hooks.before, "before").await?;
        if !job.copy.is_empty() || !job.delete.is_empty() {
            self.write_files(job).await?;
        }
        self.run_hooks(job, &req.hooks.after, "after").await
    }

    async fn run_hooks(&self, job: &Job, hooks: &[Hook], when: &str) -> Result<(), DeployError> {
        for hook in hooks {
            let Hook::Container(c) = hook else { continue };
            if c.container_name
                .as_ref()
                .is_some_and(|g| !g.matches(&job.key.container))
            {
                continue;
            }
            let out = self
                .exec(&job.ns, &job.pod, &job.key.container, &c.command, None)
                .await?;
            if !out.success() {
                return Err(self.failed(
                    job,
                    &format!("sync hook ({when}) `{}`", c.command.join(" ")),
                    &out,
                ));
            }
        }
        Ok(())
    }

    /// Writes the job's files with the container's transport, finding it out on first use.
    async fn write_files(&self, job: &Job) -> Result<(), DeployError> {
        let known = self
            .sync_memory
            .lock()
            .await
            .transports
            .get(&job.key)
            .copied();
        let mut transport = known.unwrap_or(Transport::TarShell);
        loop {
            let tried = match transport {
                Transport::TarShell => self.write_with_tar(job).await?,
                Transport::Shell => self.write_with_shell(job).await?,
                Transport::Unavailable => {
                    return Err(DeployError::Api {
                        message: format!(
                            "pod/{} -n {}, container `{}`: it has no `sh` and `head` to receive files with (a distroless or single-binary image)",
                            job.pod, job.ns, job.key.container
                        ),
                        hint: Some(
                            "devloop rebuilds this image on each change instead; to sync, add a shell to the dev image (busybox's `sh`, `head`, `tar`)"
                                .into(),
                        ),
                    });
                }
            };
            let next = match tried {
                Attempt::Done => None,
                Attempt::NoTar => Some(Transport::Shell),
                Attempt::NoShell => Some(Transport::Unavailable),
            };
            let Some(next) = next else {
                self.sync_memory
                    .lock()
                    .await
                    .transports
                    .insert(job.key.clone(), transport);
                return Ok(());
            };
            transport = next;
            self.sync_memory
                .lock()
                .await
                .transports
                .insert(job.key.clone(), transport);
        }
    }

    async fn write_with_tar(&self, job: &Job) -> Result<Attempt, DeployError> {
        let copy = job.copy.clone();
        let archive = tokio::task::spawn_blocking(move || archive(&copy))
            .await
            .map_err(|e| DeployError::Api {
                message: format!("sync: {e}"),
                hint: None,
            })??;
        let owned = job.copy.iter().any(|f| f.owner.is_some());
        let script = format!("TAR_OWNER={}\n{TAR_SCRIPT}", if owned { "" } else { "o" });
        let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), script, "sh".into()];
        argv.push(archive.len().to_string());
        argv.push(job.copy.len().to_string());
        for f in &job.copy {
            argv.push(temporary(&f.dest));
            argv.push(f.dest.clone());
        }
        argv.extend(job.delete.iter().cloned());
        let stdin = (!job.copy.is_empty()).then(|| archive.into());
        let out = self
            .exec(&job.ns, &job.pod, &job.key.container, &argv, stdin)
            .await?;
        match &out.outcome {
            ExecOutcome::ProgramMissing(_) => Ok(Attempt::NoShell),
            ExecOutcome::Exited(_) if mentions_missing(&out, "head") => Ok(Attempt::NoShell),
            ExecOutcome::Exited(_) if mentions_missing(&out, "tar") => Ok(Attempt::NoTar),
            ExecOutcome::Exited(0) => Ok(Attempt::Done),
            ExecOutcome::Exited(_) => Err(self.failed(job, "writing the files", &out)),
        }
    }

    async fn write_with_shell(&self, job: &Job) -> Result<Attempt, DeployError> {
        for f in &job.copy {
            let local = f.local.clone();
            let owner = match &f.owner {
                Some(_) => {
                    let (u, g) = f.owner_ids()?;
                    format!("{u}:{g}")
                }
                None => String::new(),
            };
            let content = tokio::task::spawn_blocking(move || read_file(&local))
                .await
                .map_err(|e| DeployError::Api {
                    message: format!("sync: {e}"),
                    hint: None,
                })??;
            let dir = parent_dir(&f.dest);
            let argv: Vec<String> = vec![
                "sh".into(),
                "-c".into(),
                SHELL_FILE_SCRIPT.into(),
                "sh".into(),
                dir,
                content.len().to_string(),
                temporary(&f.dest),
                format!("{:o}", f.mode & 0o7777),
                f.dest.clone(),
                owner,
            ];
            let out = self
                .exec(
                    &job.ns,
                    &job.pod,
                    &job.key.container,
                    &argv,
                    Some(content.into()),
                )
                .await?;
            match &out.outcome {
                ExecOutcome::ProgramMissing(_) => return Ok(Attempt::NoShell),
                ExecOutcome::Exited(0) => {}
                ExecOutcome::Exited(_) => return Err(self.failed(job, "writing the files", &out)),
            }
        }
        if !job.delete.is_empty() {
            let mut argv: Vec<String> = ["sh", "-c", SHELL_DELETE_SCRIPT, "sh"]
                .map(String::from)
                .to_vec();
            argv.extend(job.delete.iter().cloned());
            let out = self
                .exec(&job.ns, &job.pod, &job.key.container, &argv, None)
                .await?;
            if !out.success() {
                return Err(self.failed(job, "deleting files", &out));
            }
        }
        Ok(Attempt::Done)
    }

    fn failed(&self, job: &Job, what: &str, out: &ExecOutput) -> DeployError {
        let code = match &out.outcome {
            ExecOutcome::Exited(c) => format!("exit code {c}"),
            ExecOutcome::ProgramMissing(m) => m.clone(),
        };
        let tail = out.tail(3);
        DeployError::Api {
            message: format!(
                "pod/{} -n {}, container `{}`: {what} failed ({code}){}",
                job.pod,
                job.ns,
                job.key.container,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ),
            hint: tail.contains("ermission denied").then(|| {
                "the container's user cannot write there: sync into a directory it owns, or rebuild".to_string()
            }),
        }
    }
}

/// Whether a container whose spec names `image` runs `reference`: the same string, or the same repository
/// (`app` is `docker.io/library/app`) with the same digest, or the same tag when either has no digest (a chart
/// may write `repository:tag` from values where devloop deployed `repository:tag@digest`).
fn runs(image: &str, reference: &str) -> bool {
    if image == reference {
        return true;
    }
    let (Ok(a), Ok(b)) = (crate::tag::parse(image), crate::tag::parse(reference)) else {
        return false;
    };
    if crate::tag::normalize_repository(&a.repository)
        != crate::tag::normalize_repository(&b.repository)
    {
        return false;
    }
    match (&a.digest, &b.digest) {
        (Some(x), Some(y)) => x == y,
        _ => a.tag.is_some() && a.tag == b.tag,
    }
}

/// What one transport attempt found.
enum Attempt {
    Done,
    NoTar,
    NoShell,
}

/// Whether the shell said it could not find `program` (`sh: tar: not found`, `tar: command not found`).
fn mentions_missing(out: &ExecOutput, program: &str) -> bool {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .any(|l| l.contains(program) && l.contains("not found"))
}

/// Every file synced since the build: the ones still there to copy, the deleted ones to delete.
fn everything(files: &BTreeMap<String, Option<SyncFile>>) -> (Vec<SyncFile>, Vec<String>) {
    let mut copy = Vec::new();
    let mut delete = Vec::new();
    for (dest, file) in files {
        match file {
            Some(f) => copy.push(f.clone()),
            None => delete.push(dest.clone()),
        }
    }
    (copy, delete)
}

/// The temporary name a file is written to before it is renamed to `dest`: hidden, beside it.
fn temporary(dest: &str) -> String {
    let (dir, name) = dest.rsplit_once('/').unwrap_or(("", dest));
    format!("{dir}/.{name}.devloop-sync")
}

fn parent_dir(dest: &str) -> String {
    match dest.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
    }
}

fn read_file(path: &std::path::Path) -> Result<Vec<u8>, DeployError> {
    std::fs::read(path).map_err(|e| DeployError::Api {
        message: format!("sync: cannot read `{}`: {e}", path.display()),
        hint: None,
    })
}

/// A tar archive of `files` under their temporary names (relative to `/`), with their modes, owned by root (as
/// `COPY` makes them) or by their numeric `--chown` owner.
fn archive(files: &[SyncFile]) -> Result<Vec<u8>, DeployError> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let content = read_file(&f.local)?;
        let (uid, gid) = f.owner_ids()?;
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(f.mode & 0o7777);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let name = temporary(&f.dest);
        builder
            .append_data(&mut header, name.trim_start_matches('/'), &content[..])
            .map_err(|e| DeployError::Api {
                message: format!(
                    "sync: cannot add `{}` to the archive: {e}",
                    f.local.display()
                ),
                hint: None,
            })?;
    }
    builder.into_inner().map_err(|e| DeployError::Api {
        message: format!("sync: {e}"),
        hint: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_sit_beside_their_file() {
        assert_eq!(
            temporary("/app/www/index.php"),
            "/app/www/.index.php.devloop-sync"
        );
        assert_eq!(temporary("/x"), "/.x.devloop-sync");
        assert_eq!(parent_dir("/app/www/index.php"), "/app/www");
        assert_eq!(parent_dir("/x"), "/");
    }

    #[test]
    fn the_archive_holds_temporary_names_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run.sh");
        std::fs::write(&f, "echo hi\n").unwrap();
        let bytes = archive(&[
            SyncFile {
                local: f.clone(),
                dest: "/app/bin/run.sh".into(),
                mode: 0o751,
                owner: None,
            },
            SyncFile {
                local: f,
                dest: "/app/own.sh".into(),
                mode: 0o640,
                owner: Some("33".into()),
            },
        ])
        .unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let entries: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.header().uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("app/bin/.run.sh.devloop-sync".to_string(), 0o751, 0),
                ("app/.own.sh.devloop-sync".to_string(), 0o640, 33),
            ]
        );
    }

    #[test]
    fn everything_copies_what_is_there_and_deletes_what_is_gone() {
        let mut files = BTreeMap::new();
        let a = SyncFile {
            local: "/src/a".into(),
            dest: "/a".into(),
            mode: 0o644,
            owner: None,
        };
        files.insert("/a".to_string(), Some(a));
        files.insert("/b".to_string(), None);
        let (copy, delete) = everything(&files);
        assert_eq!(copy.len(), 1);
        assert_eq!(copy[0].dest, "/a");
        assert_eq!(delete, ["/b"]);
    }

    #[test]
    fn a_container_runs_the_reference_by_repository_and_tag_or_digest() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let e = "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(runs("reg:5000/api:abc", "reg:5000/api:abc"));
        assert!(runs("api:abc", "docker.io/library/api:abc"));
        assert!(runs("reg:5000/api:abc", &format!("reg:5000/api:abc@{d}")));
        assert!(runs(
            &format!("reg:5000/api@{d}"),
            &format!("reg:5000/api:abc@{d}")
        ));
        assert!(!runs(
            &format!("reg:5000/api:abc@{e}"),
            &format!("reg:5000/api:abc@{d}")
        ));
        assert!(!runs("reg:5000/api:old", "reg:5000/api:abc"));
        assert!(!runs("reg:5000/web:abc", "reg:5000/api:abc"));
        assert!(!runs("reg:5000/api", "reg:5000/api:abc"));
    }

    #[test]
    fn only_an_image_with_synced_files_has_anything_to_replay() {
        let mut memory = SyncMemory::default();
        assert!(!memory.has_synced("api", "reg/api:1"));
        let mut synced = SyncedImage {
            reference: "reg/api:1".into(),
            ..SyncedImage::default()
        };
        synced.files.insert("/www/a".into(), None);
        memory.images.insert("api".into(), synced);
        assert!(memory.has_synced("api", "reg/api:1"));
        assert!(
            !memory.has_synced("api", "reg/api:2"),
            "a rebuilt image starts over"
        );
        assert!(!memory.has_synced("web", "reg/api:1"));
    }

    #[test]
    fn a_missing_tar_is_told_from_a_failing_one() {
        let out = |stderr: &str| ExecOutput {
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            outcome: ExecOutcome::Exited(127),
        };
        assert!(mentions_missing(&out("sh: tar: not found\n"), "tar"));
        assert!(mentions_missing(
            &out("sh: 1: tar: command not found\n"),
            "tar"
        ));
        assert!(!mentions_missing(&out("tar: short read\n"), "tar"));
    }
}
