//! Deploy, Docker backend, the pause image: the daemon's architecture → `devloop-pause:<hash>`, an image holding
//! one tiny static program that blocks forever (what a Kubernetes pod's pause container runs), `docker import`ed
//! from bytes devloop carries when the daemon lacks it, since images can never be pulled here and users may be
//! offline. Decided once per target; an architecture without a program, or a daemon that refuses the import, gives
//! no image (no sandboxes). Never removes the image: it is shared by every project on the daemon and weighs about
//! 1 KB.

use bollard::query_parameters::CreateImageOptions;
use futures_util::stream::StreamExt;

use super::DockerTarget;
use super::daemon_error::{api_error, is_not_found};
use super::labels::MANAGED_BY;
use crate::deploy::DeployError;

/// The repository of the pause image; its tag is the first 12 hex digits of the program's SHA-256.
const REPOSITORY: &str = "devloop-pause";

/// Where the program is loaded (the traditional base of a non-PIE executable, 64 KiB aligned).
const BASE: u64 = 0x40_0000;
/// Size of the ELF64 file header.
const EHDR_SIZE: u16 = 64;
/// Size of one ELF64 program header.
const PHDR_SIZE: u16 = 56;

/// x86_64: `mov eax, 34` (`pause`), `syscall`, `jmp` back to the `mov` (rel8 −9): sleeps until a signal, forever.
const X86_64_CODE: [u8; 9] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

/// aarch64 (instruction words, stored little-endian): `movz x0..x3, #0`, `movz x8, #73` (`ppoll(NULL, 0, NULL,
/// NULL)`: no descriptors, no timeout, so it blocks until a signal), `svc #0`, `b` back to the first `movz` (−6).
const AARCH64_CODE: [u32; 7] = [
    0xd280_0000,
    0xd280_0001,
    0xd280_0002,
    0xd280_0003,
    0xd280_0928,
    0xd400_0001,
    0x17ff_fffa,
];

/// An architecture devloop carries a pause program for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The daemon's `docker version` Arch (`amd64`, `arm64`); `None` for any other.
    pub(super) fn of_daemon(os: &str, arch: &str) -> Option<Arch> {
        match (os, arch) {
            ("linux", "amd64") => Some(Arch::X86_64),
            ("linux", "arm64" | "aarch64") => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// The static ELF64 executable of `arch`'s pause program: one file header, one `PT_LOAD` program header, the code.
/// No sections, no interpreter, no libc: the kernel maps the whole file at [`BASE`] and jumps to the code.
pub(super) fn program(arch: Arch) -> Vec<u8> {
    let (machine, align, code): (u16, u64, Vec<u8>) = match arch {
        Arch::X86_64 => (0x3e, 0x1000, X86_64_CODE.to_vec()),
        Arch::Aarch64 => (
            0xb7,
            0x1_0000,
            AARCH64_CODE.iter().flat_map(|w| w.to_le_bytes()).collect(),
        ),
    };
    let code_offset = u64::from(EHDR_SIZE) + u64::from(PHDR_SIZE);
    let size = code_offset + code.len() as u64;
    let mut f = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1), EV_CURRENT (1), ELFOSABI_SYSV (0), ABI version 0, padding.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type: ET_EXEC
    f.extend_from_slice(&machine.to_le_bytes()); // e_machine: EM_X86_64 (0x3e) or EM_AARCH64 (0xb7)
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version: EV_CURRENT
    f.extend_from_slice(&(BASE + code_offset).to_le_bytes()); // e_entry: the first instruction
    f.extend_from_slice(&u64::from(EHDR_SIZE).to_le_bytes()); // e_phoff: program headers right after this one
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff: no section headers
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&EHDR_SIZE.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&PHDR_SIZE.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize (the size a section header would have)
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx: SHN_UNDEF
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type: PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags: PF_R | PF_X
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset: the whole file, headers included
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    f.extend_from_slice(&size.to_le_bytes()); // p_filesz
    f.extend_from_slice(&size.to_le_bytes()); // p_memsz: nothing to zero-fill
    f.extend_from_slice(&align.to_le_bytes()); // p_align: the largest page size of the architecture
    f.extend_from_slice(&code);
    f
}

/// The image reference of `program`: `devloop-pause:<first 12 hex digits of its SHA-256>`.
pub(super) fn reference(program: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(program);
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{REPOSITORY}:{hex}")
}

/// The root file system of the image: one file, `/pause`, mode 0755, owned by root.
fn root_fs(program: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(program.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    archive.append_data(&mut header, "pause", program)?;
    archive.into_inner()
}

impl DockerTarget {
    /// The pause image for the daemon's architecture, imported when the daemon lacks it; `None` when devloop has no
    /// program for that architecture. Asked of the daemon once per target.
    pub(super) async fn pause_image(&self) -> Result<Option<String>, DeployError> {
        self.pause
            .get_or_try_init(|| self.ensure_pause_image())
            .await
            .cloned()
    }

    async fn ensure_pause_image(&self) -> Result<Option<String>, DeployError> {
        let object = "image/devloop-pause";
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| api_error(object, "read the daemon's version", &e))?;
        let os = version.os.unwrap_or_default();
        let arch = version.arch.unwrap_or_default();
        let Some(arch) = Arch::of_daemon(&os, &arch) else {
            tracing::info!(%os, %arch, "no pause program for the daemon's platform: containers run without a sandbox");
            return Ok(None);
        };
        let program = program(arch);
        let reference = reference(&program);
        match self.docker.inspect_image(&reference).await {
            Ok(_) => return Ok(Some(reference)),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(object, "inspect", &e)),
        }
        let tar = root_fs(&program).map_err(|e| DeployError::Apply {
            object: object.into(),
            message: format!("cannot write its file system: {e}"),
            hint: None,
        })?;
        let (repo, tag) = reference.split_once(':').unwrap_or((REPOSITORY, "latest"));
        let mut import = self.docker.create_image(
            Some(CreateImageOptions {
                from_src: Some("-".into()),
                repo: Some(repo.into()),
                tag: Some(tag.into()),
                message: Some(
                    "devloop's pause program: holds a container's network namespace".into(),
                ),
                changes: vec![
                    r#"CMD ["/pause"]"#.into(),
                    format!("LABEL {}={}", MANAGED_BY.0, MANAGED_BY.1),
                ],
                ..Default::default()
            }),
            Some(bollard::body_full(tar.into())),
            None,
        );
        while let Some(item) = import.next().await {
            if let Err(e) = item {
                // A daemon that refuses imports (a policy, an API that lacks them) runs containers as before, only
                // without the faster replacement: not worth failing the session for.
                let e = api_error(object, &format!("import `{reference}`"), &e);
                tracing::info!(error = %e, "containers run without a network sandbox");
                return Ok(None);
            }
        }
        tracing::info!(%reference, "imported the pause image");
        Ok(Some(reference))
    }
}
