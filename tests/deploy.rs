//! The systemd unit operators install passes `systemd-analyze verify`. (That the
//! Grafana dashboard and the alert rules use only exported metric names is checked
//! in `src/telemetry/metrics.rs`, against the registry itself.)

use std::path::Path;
use std::process::Command;

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("deploy/systemd/ponte.service")).expect("unit");
    // verify checks that ExecStart's binary exists: point it at the one just built.
    let unit = unit.replace("/usr/local/bin/ponte", env!("CARGO_BIN_EXE_ponte"));
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("ponte.service");
    std::fs::write(&path, unit).expect("write unit");

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (Debian package systemd)");

    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
