//! A global allocator that counts allocations per thread, for measurements that attribute
//! allocations to the threads doing the work (a room's worker thread, a benchmark's measuring
//! thread) while other threads (the test's own peers, the harness) allocate meanwhile.
//!
//! A binary opts in with `#[global_allocator] static A: PerThread = PerThread;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Threads told apart; any beyond share the last slot.
const SLOTS: usize = 1024;

struct Slot {
    tid: AtomicI32,
    allocations: AtomicU64,
    /// Bytes asked for by those allocations (a reallocation counts its new size).
    bytes: AtomicU64,
}

static THREADS: [Slot; SLOTS] =
    [const { Slot { tid: AtomicI32::new(0), allocations: AtomicU64::new(0), bytes: AtomicU64::new(0) } }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot, taken at its first allocation.
    static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Counts an allocation on the calling thread's slot. Allocates nothing itself: the
/// thread-local is const-initialised and the slots are static. During a thread's teardown the
/// thread-local may be gone; those allocations are not counted.
fn count(bytes: usize) {
    let _ = MINE.try_with(|mine| {
        if mine.get() == usize::MAX {
            let slot = NEXT_SLOT.fetch_add(1, Relaxed).min(SLOTS - 1);
            THREADS[slot].tid.store(unsafe { libc::gettid() }, Relaxed);
            mine.set(slot);
        }
        THREADS[mine.get()].allocations.fetch_add(1, Relaxed);
        THREADS[mine.get()].bytes.fetch_add(bytes as u64, Relaxed);
    });
}

/// Allocations (and reallocations) made so far on the threads `tids` (kernel thread ids).
pub fn on_threads(tids: &[i32]) -> u64 {
    THREADS.iter().filter(|s| tids.contains(&s.tid.load(Relaxed))).map(|s| s.allocations.load(Relaxed)).sum()
}

/// Bytes allocated so far on the threads `tids` (freed or not).
pub fn bytes_on_threads(tids: &[i32]) -> u64 {
    THREADS.iter().filter(|s| tids.contains(&s.tid.load(Relaxed))).map(|s| s.bytes.load(Relaxed)).sum()
}

/// Allocations made so far on the calling thread.
pub fn on_this_thread() -> u64 {
    on_threads(&[unsafe { libc::gettid() }])
}

/// The counting allocator ([`System`]'s, counted).
pub struct PerThread;

unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
