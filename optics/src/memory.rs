//! How much memory a computation may take: what the machine has left, and a check that refuses
//! a computation that would need more, before anything is allocated for it.
//!
//! A zero-padded grid grows with the square of the padding: `--pad 64` on a 2048 × 2048 field is
//! a 131 072 × 131 072 transform, hundreds of gigabytes. Allocating it would not fail cleanly on
//! Linux (memory is promised first and taken when touched), and the kernel's out-of-memory
//! killer would end the process — or another one — minutes later. [`check_fits`] turns that into
//! an error that says what needs how much, and what is available.

use std::fs;

use crate::error::{OpticsError, Result};

/// Bytes of memory this process can still take without swapping: the smaller of Linux's
/// `MemAvailable` (`/proc/meminfo`) and the room left under the control group's limit, as
/// containers and CI runners set it (`/sys/fs/cgroup/memory.max` less the group's working set,
/// `memory.current` less the page cache it may drop, `inactive_file` of `memory.stat`).
/// `None` where neither can be read (other systems): nothing is then refused.
pub fn available_bytes() -> Option<u64> {
    let read = |path: &str| fs::read_to_string(path).ok();
    let meminfo = read("/proc/meminfo").and_then(|t| meminfo_available(&t));
    let cgroup = (|| {
        cgroup_room(
            &read("/sys/fs/cgroup/memory.max")?,
            &read("/sys/fs/cgroup/memory.current")?,
            &read("/sys/fs/cgroup/memory.stat")?,
        )
    })();
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The room under a cgroup v2 limit: `memory.max` less the working set (`memory.current` less
/// the `inactive_file` page cache of `memory.stat`, which the kernel drops before it kills).
/// `None` without a limit (`max`).
fn cgroup_room(max: &str, current: &str, stat: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    let cache = stat
        .lines()
        .find_map(|l| l.strip_prefix("inactive_file "))?;
    let working_set = current.saturating_sub(cache.trim().parse().ok()?);
    Some(max.saturating_sub(working_set))
}

/// The product of `factors` (counts and a size in bytes), saturating at `u64::MAX`: what a
/// computation needs, for [`check_fits`], without overflow for absurd sizes.
pub fn bytes(factors: &[usize]) -> u64 {
    factors
        .iter()
        .fold(1u64, |b, &f| b.saturating_mul(f as u64))
}

/// Below this many bytes a computation is not checked: the check reads two or three small
/// files (tens of microseconds), which would weigh on small, fast work.
pub const CHECKED_FROM_BYTES: u64 = 1 << 26;

/// Refuses a computation that needs `bytes` (from [`CHECKED_FROM_BYTES`] up) when fewer are
/// [`available_bytes`]. `what` names the computation and `fix` says what to change; both are
/// only built for the error.
pub fn check_fits(bytes: u64, what: impl FnOnce() -> String, fix: &str) -> Result<()> {
    if bytes < CHECKED_FROM_BYTES {
        return Ok(());
    }
    fits_within(bytes, available_bytes(), what, fix)
}

/// [`check_fits`] against `available` bytes (`None` accepts everything).
fn fits_within(
    bytes: u64,
    available: Option<u64>,
    what: impl FnOnce() -> String,
    fix: &str,
) -> Result<()> {
    match available {
        Some(available) if bytes > available => Err(OpticsError::Memory {
            what: what(),
            needed: format_bytes(bytes),
            available: format_bytes(available),
            fix: fix.to_string(),
        }),
        _ => Ok(()),
    }
}

/// `bytes` for reading, in decimal units: `"550 GB"`, `"1.5 GB"`, `"24 MB"`.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    let (value, unit) = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")]
        .into_iter()
        .find(|&(size, _)| b >= size)
        .map_or((b, "bytes"), |(size, unit)| (b / size, unit));
    let digits = if value < 10.0 && unit != "bytes" {
        1
    } else {
        0
    };
    format!("{value:.digits$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_does_not_fit_and_says_so() {
        assert!(fits_within(10, Some(10), String::new, "").is_ok());
        assert!(fits_within(u64::MAX, None, String::new, "").is_ok());
        // Small work is not checked; work no machine has is refused.
        assert!(check_fits(CHECKED_FROM_BYTES - 1, String::new, "").is_ok());
        if cfg!(target_os = "linux") {
            assert!(check_fits(u64::MAX, String::new, "").is_err());
        }
        let e = fits_within(
            550_000_000_000,
            Some(21_500_000_000),
            || "a 131072×131072 transform".into(),
            "use less padding",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "a 131072×131072 transform needs about 550 GB of memory, and 22 GB are available; \
             use less padding"
        );
    }

    #[test]
    fn sizes_multiply_without_overflow() {
        assert_eq!(bytes(&[3, 5, 16]), 240);
        assert_eq!(bytes(&[]), 1);
        assert_eq!(bytes(&[usize::MAX, usize::MAX, 2]), u64::MAX);
    }

    #[test]
    fn bytes_read_in_decimal_units() {
        assert_eq!(format_bytes(999), "999 bytes");
        assert_eq!(format_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(format_bytes(24_000_000), "24 MB");
        assert_eq!(format_bytes(550_000_000_000), "550 GB");
        assert_eq!(format_bytes(3_000_000_000_000), "3.0 TB");
    }

    #[test]
    fn meminfo_and_cgroup_files_are_read() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   21000000 kB\n";
        assert_eq!(meminfo_available(meminfo), Some(21_000_000 * 1024));
        assert_eq!(meminfo_available("MemTotal: 5 kB\n"), None);
        let stat = "anon 100\nfile 900\nactive_file 300\ninactive_file 600\n";
        // 8 GB limit, 5 GB charged of which 3 GB droppable page cache: 6 GB of room.
        let stat = stat.replace("600", "3000000000");
        assert_eq!(
            cgroup_room("8000000000\n", "5000000000\n", &stat),
            Some(6_000_000_000)
        );
        assert_eq!(cgroup_room("max\n", "5000000000\n", &stat), None);
        assert_eq!(cgroup_room("100\n", "500\n", "inactive_file 0\n"), Some(0));
    }

    #[test]
    fn this_machine_reports_its_memory() {
        // The project's machines and CI run Linux, which has /proc/meminfo.
        if cfg!(target_os = "linux") {
            let a = available_bytes().expect("MemAvailable is readable on Linux");
            assert!(a > 10_000_000, "{a} bytes available");
        }
    }
}
