//! Memory checks before large allocations: an estimate compared with what the OS can give, so an absurd size
//! is a clear error instead of an allocation failure.

/// Memory the OS can give this process now (MemAvailable of /proc/meminfo), if it tells.
pub fn available_memory_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// An error naming `what` when `bytes` (an estimate) exceed the memory available, before allocating it.
pub fn check_memory(what: &str, bytes: f64) -> Result<(), String> {
    let gib = |b: f64| b / (1u64 << 30) as f64;
    match available_memory_bytes() {
        Some(avail) if bytes > avail as f64 => Err(format!(
            "{what} needs about {:.1} GiB of memory, more than the {:.1} GiB available",
            gib(bytes),
            gib(avail as f64)
        )),
        _ => Ok(()),
    }
}
