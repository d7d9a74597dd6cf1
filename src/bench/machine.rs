//! The machine a benchmark ran on, as the report describes it: processor, cores,
//! memory, kernel, load, and the file system that holds the outbox.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the report says about the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// The processor's model name.
    pub cpu: String,
    /// Logical processors available to this process.
    pub cores: usize,
    /// Total memory, in MiB.
    pub memory_mib: u64,
    /// The kernel release.
    pub kernel: String,
    /// File system type and device of the outbox's directory.
    pub outbox_file_system: String,
    /// The 1, 5 and 15 minute load averages when the run began: other work on
    /// the machine takes CPU from the benchmark.
    #[serde(default)]
    pub load_average: String,
}

impl Machine {
    /// Describes this machine, with the outbox in `outbox_dir`.
    pub fn describe(outbox_dir: &Path) -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
            .map(|(_, name)| name.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_default();
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_mib: memory_kib / 1024,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            outbox_file_system: file_system_of(outbox_dir, &read("/proc/mounts")),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// `type (device at mount point)` of the mount in `mounts` (the text of
/// `/proc/mounts`) holding `dir`: the one with the longest matching mount point.
pub fn file_system_of(dir: &Path, mounts: &str) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(point).then_some((point, device, kind))
        })
        .max_by_key(|(point, _, _)| point.len())
        .map_or_else(
            || "unknown".to_owned(),
            |(point, device, kind)| format!("{kind} ({device} at {point})"),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_file_system_is_the_longest_mount_point_above_it() {
        let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n";
        let found = file_system_of(Path::new("/tmp/bench-outbox-none"), mounts);
        assert_eq!(found, "tmpfs (tmpfs at /tmp)");
        let found = file_system_of(Path::new("/work/x"), mounts);
        assert_eq!(found, "ext4 (/dev/vda at /)");
    }
}
