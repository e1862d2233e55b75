//! `promlake rules test`: the command line prints what the real `promtool
//! test rules` prints, on the same streams, with the same exit code.

use std::path::Path;
use std::process::Command;

use crate::harness::reference_bin;

#[test]
fn promlake_rules_test_prints_and_exits_as_promtool() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules-test/tests/data");
    for (args, code) in [
        (vec!["basic.test.yml"], 0),
        (vec!["failing.test.yml", "basic.test.yml"], 1),
        (vec!["--run", "^templates$", "templates.test.yml"], 0),
    ] {
        let run = |program: &Path, prefix: &[&str]| {
            let out = Command::new(program).args(prefix).args(&args).current_dir(&data).output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let promtool = run(&reference_bin().join("promtool"), &["test", "rules"]);
        let promlake = run(Path::new(env!("CARGO_BIN_EXE_promlake")), &["rules", "test"]);
        assert_eq!(promtool.0, Some(code), "{args:?}: {}", promtool.2);
        assert_eq!(promlake, promtool, "{args:?}");
    }
}
