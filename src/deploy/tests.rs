//! Deploy stage, unit tests: concurrent per-object results gathered into one outcome.

use super::*;

fn failed(m: &str) -> DeployError {
    DeployError::Status(m.to_string())
}

#[test]
fn all_or_errors_keeps_every_ok_or_names_every_failure() {
    assert_eq!(
        all_or_errors(vec![Ok(1), Ok(2)], "x failed").unwrap(),
        vec![1, 2]
    );
    let one = all_or_errors(vec![Ok(1), Err(failed("a: bad"))], "x failed").unwrap_err();
    assert_eq!(one.to_string(), "a: bad");
    let two = all_or_errors::<u8>(
        vec![Err(failed("a")), Err(failed("b"))],
        "objects could not be applied",
    )
    .unwrap_err();
    assert_eq!(two.to_string(), "2 objects could not be applied:\n- a\n- b");
}
