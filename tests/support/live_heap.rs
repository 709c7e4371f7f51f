//! A counting global allocator for the tests that measure what the server keeps on the
//! heap (tests/tls_review.rs, tests/ws_review.rs) or allocates (tests/version_review.rs):
//! include it with
//! `#[path = "support/live_heap.rs"] mod live_heap;` — it installs itself as the test
//! binary's `#[global_allocator]`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counts the bytes live on the heap, all threads together (the server runs in this
/// process): `live_bytes` at two quiet moments tells what the server kept in between.
pub struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
/// Every byte allocated (a `realloc` counts its new size), never decreased.
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to `System` unchanged; the count is a relaxed atomic add.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes allocated so far, all threads together: the difference between two moments is
/// what the process allocated in between, whatever it freed.
pub fn allocated_bytes() -> u64 {
    ALLOCATED.load(Ordering::Relaxed)
}

/// Tests that measure the heap run one at a time (see `live_bytes`), and so do the
/// timing-sensitive ones beside them: every test takes it.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
