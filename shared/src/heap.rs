//! The heap allocator of both binaries (jemalloc) and its statistics for `/metrics`.
//!
//! Each binary names [`Jemalloc`] as its `#[global_allocator]` (a library cannot, or every test
//! binary linking it would get it too). Measured against glibc's malloc on the same build
//! (`ARCHITECTURE.md`, decisions): signaling +20–28 % requests per CPU-second (glibc's
//! allocator had been 15 % of a request's samples), a subscriber ~40 KiB lighter at 10
//! subscribers.

use std::fmt::Write as _;
pub use tikv_jemallocator::Jemalloc;

/// What the allocator holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the process has allocated and not freed.
    pub allocated: u64,
    /// Bytes of physical memory the allocator holds (allocated, its metadata, and freed pages
    /// not yet returned): the heap's part of RSS.
    pub resident: u64,
}

/// The allocator's current statistics; `None` when jemalloc cannot report them. A process
/// whose global allocator is another reads jemalloc's own nearly empty heap.
pub fn stats() -> Option<HeapStats> {
    // Statistics are cached per epoch: advance it to read current values.
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    let allocated = tikv_jemalloc_ctl::stats::allocated::read().ok()? as u64;
    let resident = tikv_jemalloc_ctl::stats::resident::read().ok()? as u64;
    Some(HeapStats { allocated, resident })
}

/// Appends the heap's gauges in Prometheus's text format (nothing when there are no statistics).
pub fn render(out: &mut String) {
    let Some(s) = stats() else { return };
    for (name, help, v) in [
        ("heap_allocated_bytes", "Bytes allocated and not freed (jemalloc)", s.allocated),
        ("heap_resident_bytes", "Physical memory held by the heap allocator (jemalloc)", s.resident),
    ] {
        let _ = writeln!(out, "# HELP portunus_{name} {help}\n# TYPE portunus_{name} gauge\nportunus_{name} {v}");
    }
}
