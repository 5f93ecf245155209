//! [`MiMalloc`]: the global allocator the `ringgate` binary installs (and the engine bench
//! measures with). It is mimalloc, called the way the C library's `malloc` is meant to be.
//!
//! The `mimalloc` crate's allocator sends every allocation through `mi_malloc_aligned`, even
//! when the layout asks for no more alignment than plain `mi_malloc` always gives. In mimalloc
//! 3 the aligned entry point takes a slower, generic path for any block over 1 KiB, and for a
//! small block whose free slot happens not to fit the alignment. A request allocates a few of
//! those (its params block, its header map).
//!
//! This one asks for alignment only when the layout needs more than `malloc` promises, with
//! the rule std's `System` allocator applies to `malloc`. The engine bench counts about 300
//! fewer instructions per request with it (callgrind).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The alignment `malloc` guarantees for a block of at least this size: `alignof(max_align_t)`
/// on the 64-bit targets ringgate builds for (std's `System` allocator uses the same value).
const MALLOC_ALIGN: usize = 16;

/// Whether plain `malloc` of `size` bytes is aligned enough for `align`: C requires `malloc`'s
/// block to suit every fundamental alignment of an object that fits in it, which is
/// `MALLOC_ALIGN` or the size, whichever is smaller.
fn malloc_suffices(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

/// mimalloc as the global allocator. Install it with
/// `#[global_allocator] static GLOBAL: ringgate::alloc::MiMalloc = ringgate::alloc::MiMalloc;`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MiMalloc;

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks from all
// of its allocation functions). A block from `mi_malloc`/`mi_zalloc`/`mi_realloc` is only
// handed out when `malloc_suffices`, that is when mimalloc, as a conforming `malloc`, already
// aligns it enough; every other layout goes through mimalloc's aligned functions. All of them
// return null on failure, as `GlobalAlloc` requires.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain FFI calls; the layout's alignment is a power of two, as mimalloc needs.
        unsafe {
            if malloc_suffices(layout.align(), layout.size()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if malloc_suffices(layout.align(), layout.size()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned, which mimalloc allocated.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block this allocator returned with `layout`; the new
        // block keeps `layout`'s alignment, through the aligned call when `malloc`'s is not
        // enough for the new size.
        unsafe {
            if malloc_suffices(layout.align(), new_size) {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aligned(p: *mut u8, align: usize) -> bool {
        !p.is_null() && p as usize % align == 0
    }

    #[test]
    fn every_block_is_aligned_and_keeps_its_bytes() {
        let a = MiMalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=300).chain([1023, 1024, 1025, 1100, 4096, 70_000, 3 << 20]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                let bigger = Layout::from_size_align(size * 3, align).unwrap();
                let what = format!("size {size} align {align}");
                // SAFETY: non-zero-sized layouts; every block is used within its size and
                // freed or reallocated with the layout it has.
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert!(aligned(z, align), "zeroed, {what}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);

                    let p = a.alloc(layout);
                    assert!(aligned(p, align), "{what}");
                    p.write_bytes(0xa5, size);
                    let grown = a.realloc(p, layout, bigger.size());
                    assert!(aligned(grown, align), "grown, {what}");
                    let kept = std::slice::from_raw_parts(grown, size);
                    assert!(kept.iter().all(|&b| b == 0xa5), "grown, {what}");
                    let shrunk = a.realloc(grown, bigger, 1);
                    assert!(aligned(shrunk, align), "shrunk, {what}");
                    assert_eq!(*shrunk, 0xa5);
                    a.dealloc(shrunk, Layout::from_size_align(1, align).unwrap());
                }
            }
        }
    }
}
