//! Deploy, Docker backend, unit tests: start order, state assessment, bind mounts and sync, bind sources, the pause
//! program's ELF layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerInspectResponse, ContainerState, ContainerStateStatusEnum, Health, HealthStatusEnum,
    HealthcheckResult,
};

use super::assessment::{Assessment, Want, assess};
use super::order::levels;
use super::pause::{Arch, program, reference};
use super::plan::clean;
use super::sync::bind_mounted;
use crate::config::deploy::{Condition, Container, Dependency, Restart, Volume};

fn container(name: &str, deps: &[&str]) -> Container {
    Container {
        name: name.into(),
        image: "x".into(),
        ports: Vec::new(),
        env: BTreeMap::new(),
        volumes: Vec::new(),
        command: None,
        args: None,
        healthcheck: None,
        depends_on: deps
            .iter()
            .map(|d| Dependency {
                name: d.to_string(),
                condition: Condition::Started,
            })
            .collect(),
        restart: Restart::No,
        init: false,
    }
}

fn state(
    status: ContainerStateStatusEnum,
    exit: i64,
    health: Option<HealthStatusEnum>,
) -> ContainerInspectResponse {
    ContainerInspectResponse {
        state: Some(ContainerState {
            status: Some(status),
            running: Some(status == ContainerStateStatusEnum::RUNNING),
            exit_code: Some(exit),
            health: health.map(|h| Health {
                status: Some(h),
                failing_streak: Some(3),
                log: Some(vec![HealthcheckResult {
                    exit_code: Some(1),
                    output: Some("connection refused\n".into()),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        }),
        restart_count: Some(0),
        ..Default::default()
    }
}

#[test]
fn levels_follow_dependencies() {
    let cs = vec![
        container("api", &["db", "migrate"]),
        container("migrate", &["db"]),
        container("db", &[]),
        container("web", &[]),
    ];
    assert_eq!(levels(&cs), vec![vec![2, 3], vec![1], vec![0]]);
}

#[test]
fn assessment_of_states() {
    use ContainerStateStatusEnum as S;
    use HealthStatusEnum as H;
    assert_eq!(
        assess(&state(S::RUNNING, 0, None), Want::Ready, Restart::No),
        Assessment::Ready
    );
    assert_eq!(
        assess(
            &state(S::RUNNING, 0, Some(H::STARTING)),
            Want::Ready,
            Restart::No
        ),
        Assessment::Pending("running, healthcheck starting".into())
    );
    assert_eq!(
        assess(
            &state(S::RUNNING, 0, Some(H::STARTING)),
            Want::Started,
            Restart::No
        ),
        Assessment::Ready
    );
    let Assessment::Failed { reason, message } = assess(
        &state(S::RUNNING, 0, Some(H::UNHEALTHY)),
        Want::Healthy,
        Restart::No,
    ) else {
        panic!("unhealthy must fail")
    };
    assert_eq!(reason, "Unhealthy");
    assert_eq!(
        message,
        "healthcheck failed 3 times in a row (last: exit code 1: connection refused)"
    );
    assert!(matches!(
        assess(&state(S::RUNNING, 0, None), Want::Healthy, Restart::No),
        Assessment::Failed { reason, .. } if reason == "NoHealthcheck"
    ));
    assert_eq!(
        assess(&state(S::EXITED, 0, None), Want::Ready, Restart::No),
        Assessment::Ready
    );
    assert_eq!(
        assess(&state(S::EXITED, 0, None), Want::Completed, Restart::No),
        Assessment::Ready
    );
    assert_eq!(
        assess(&state(S::RUNNING, 0, None), Want::Completed, Restart::No),
        Assessment::Pending("running".into())
    );
    assert_eq!(
        assess(&state(S::EXITED, 3, None), Want::Ready, Restart::No),
        Assessment::Failed {
            reason: "Error".into(),
            message: "exited with code 3".into()
        }
    );
    let mut looping = state(S::RUNNING, 2, None);
    looping.restart_count = Some(1);
    assert!(matches!(
        assess(&looping, Want::Ready, Restart::Always),
        Assessment::Failed { reason, .. } if reason == "CrashLoop"
    ));
}

#[test]
fn files_under_a_bind_mount_are_not_synced() {
    let mut c = container("web", &[]);
    c.volumes.push(Volume::Bind {
        source: PathBuf::from("/project/www"),
        target: "/www".into(),
        read_only: false,
    });
    c.volumes.push(Volume::Named {
        name: "data".into(),
        target: "/data".into(),
        read_only: false,
    });
    assert!(bind_mounted(&c, "/www/index.html"));
    assert!(bind_mounted(&c, "/www"));
    assert!(!bind_mounted(&c, "/wwwroot/index.html"));
    assert!(!bind_mounted(&c, "/data/x"));
    assert!(!bind_mounted(&c, "/app/main.py"));
}

#[test]
fn bind_sources_are_cleaned() {
    assert_eq!(
        clean(Path::new("/p/./www/../data")),
        PathBuf::from("/p/data")
    );
}

/// Reads a little-endian integer of `N` bytes at `at`.
fn le<const N: usize>(f: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..N].copy_from_slice(&f[at..at + N]);
    u64::from_le_bytes(b)
}

#[test]
fn the_pause_programs_are_static_elf64_executables_with_one_load_segment() {
    for (arch, machine, align, code) in [
        (
            Arch::X86_64,
            0x3e,
            0x1000,
            vec![0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7],
        ),
        (
            Arch::Aarch64,
            0xb7,
            0x1_0000,
            [
                0xd280_0000u32,
                0xd280_0001,
                0xd280_0002,
                0xd280_0003,
                0xd280_0928,
                0xd400_0001,
                0x17ff_fffa,
            ]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect(),
        ),
    ] {
        let f = program(arch);
        assert_eq!(&f[..4], b"\x7fELF");
        assert_eq!(
            &f[4..8],
            &[2, 1, 1, 0],
            "ELF64, little-endian, version 1, System V"
        );
        assert_eq!(le::<2>(&f, 16), 2, "e_type ET_EXEC");
        assert_eq!(le::<2>(&f, 18), machine, "e_machine");
        assert_eq!(le::<4>(&f, 20), 1, "e_version");
        assert_eq!(
            le::<8>(&f, 24),
            0x40_0000 + 120,
            "e_entry: the code after both headers"
        );
        assert_eq!(le::<8>(&f, 32), 64, "e_phoff");
        assert_eq!(le::<8>(&f, 40), 0, "e_shoff: no sections");
        assert_eq!(le::<2>(&f, 52), 64, "e_ehsize");
        assert_eq!(le::<2>(&f, 54), 56, "e_phentsize");
        assert_eq!(le::<2>(&f, 56), 1, "e_phnum");
        assert_eq!(le::<2>(&f, 60), 0, "e_shnum");
        let ph = 64;
        assert_eq!(le::<4>(&f, ph), 1, "p_type PT_LOAD");
        assert_eq!(le::<4>(&f, ph + 4), 5, "p_flags R+X");
        assert_eq!(le::<8>(&f, ph + 8), 0, "p_offset");
        assert_eq!(le::<8>(&f, ph + 16), 0x40_0000, "p_vaddr");
        assert_eq!(
            le::<8>(&f, ph + 32),
            f.len() as u64,
            "p_filesz: the whole file"
        );
        assert_eq!(le::<8>(&f, ph + 40), f.len() as u64, "p_memsz");
        assert_eq!(le::<8>(&f, ph + 48), align, "p_align");
        assert_eq!(&f[120..], &code[..], "the code follows the headers");
        assert_eq!(f.len(), 120 + code.len());
    }
    // The tags pin the bytes (checked by hand: the x86_64 program runs as a container's PID 1, the aarch64 one
    // blocks in `ppoll` under qemu-aarch64): a change to either program is a new image on every daemon.
    assert_eq!(
        reference(&program(Arch::X86_64)),
        "devloop-pause:ff8635206502"
    );
    assert_eq!(
        reference(&program(Arch::Aarch64)),
        "devloop-pause:c57c6f4c3a2b"
    );
}

#[test]
fn the_daemons_architecture_picks_the_pause_program() {
    assert_eq!(Arch::of_daemon("linux", "amd64"), Some(Arch::X86_64));
    assert_eq!(Arch::of_daemon("linux", "arm64"), Some(Arch::Aarch64));
    assert_eq!(Arch::of_daemon("linux", "s390x"), None);
    assert_eq!(Arch::of_daemon("windows", "amd64"), None);
}
