//! Compose import tests, syntax helpers: durations and port ranges.

use super::*;
use crate::config::compose::syntax::{duration, duration_ns, port_range, project_name, relative};

#[test]
fn durations_and_ports_helpers() {
    assert_eq!(duration("30s"), Some(("30s".into(), true)));
    assert_eq!(duration("1h5m30s20ms"), Some(("1h5m30s20ms".into(), true)));
    assert_eq!(duration("90s"), Some(("90s".into(), true)));
    assert_eq!(duration("1.5m"), Some(("1m30s".into(), true)));
    assert_eq!(duration("1500us"), Some(("2ms".into(), false)));
    assert_eq!(duration("soon"), None);
    assert_eq!(duration_ns("2.5s"), Some(2_500_000_000));
    assert_eq!(port_range("8000-8002"), Some(vec![8000, 8001, 8002]));
    assert_eq!(port_range("0"), None);
    assert_eq!(port_range("1-1000"), None);
    assert_eq!(project_name("My_App.v2"), "my_appv2");
    assert_eq!(project_name("--x--"), "x");
    assert_eq!(project_name("!!!"), "devloop");
    assert_eq!(
        relative(Path::new("/a/b/c"), Path::new("/a/d")),
        PathBuf::from("../b/c")
    );
    assert_eq!(
        relative(Path::new("/a"), Path::new("/a")),
        PathBuf::from(".")
    );
}
