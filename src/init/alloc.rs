//! The init's memory allocator: power-of-two size classes carved from 4 MiB chunks, with a
//! free list per class, and mmap for anything larger.
//!
//! Why not musl's: its malloc (mallocng) is built for hardening, not speed, and under an
//! emulated CPU (qemu's TCG, where CI boots most VMs) its first call alone took 8-16 ms of
//! the boot, and every later call is long code run once. Measured on whole boots, the init
//! with this allocator reached the real init 20-50 ms sooner. PID 1's allocations are few
//! and short-lived (text it parses, paths, the device list it refreshes while it waits), so
//! rounding up to a power of two costs little, and freed blocks are reused by the next
//! allocation of their class: a long wait for a root device does not grow the heap.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The smallest block: room for the free list's link, and the alignment malloc promises.
const MIN_SHIFT: u32 = 4;
/// The largest block carved from a chunk (1 MiB); larger requests get their own mapping.
const MAX_SHIFT: u32 = 20;
const CLASSES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Chunks are mapped this size at a time (a multiple of the largest class).
const CHUNK: usize = 4 << 20;
const PAGE: usize = 4096;

/// The first chunk is part of the binary's zero-filled data (.bss), which the kernel maps at
/// the exec: the init's first allocation then needs no mmap call (3-4 ms under TCG for the
/// first one). Handed out once, to the first heap that asks.
const FIRST_CHUNK: usize = 1 << 20;
#[repr(C, align(4096))]
struct Arena([u8; FIRST_CHUNK]);
static mut FIRST: Arena = Arena([0; FIRST_CHUNK]);
static FIRST_TAKEN: AtomicBool = AtomicBool::new(false);

/// A free block's first word: the next free block of its class.
struct FreeBlock {
    next: *mut FreeBlock,
}

struct Heap {
    /// The first free block of each class.
    free: [*mut FreeBlock; CLASSES],
    /// The unused rest of the current chunk.
    bump: usize,
    end: usize,
}

// SAFETY: the raw pointers are addresses in mappings owned by the heap, only touched with
// the lock held.
unsafe impl Send for Heap {}

pub struct Allocator {
    heap: Mutex<Heap>,
}

impl Allocator {
    pub const fn new() -> Allocator {
        Allocator {
            heap: Mutex::new(Heap {
                free: [null_mut(); CLASSES],
                bump: 0,
                end: 0,
            }),
        }
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Allocator::new()
    }
}

/// The class of a request, `None` when it is too big (or too aligned) for one.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    let shift = size.next_power_of_two().trailing_zeros();
    // Blocks are aligned to their size up to a page; beyond a page only the page is sure.
    (shift <= MAX_SHIFT && layout.align() <= PAGE).then(|| (shift - MIN_SHIFT) as usize)
}

fn class_size(class: usize) -> usize {
    1 << (class + MIN_SHIFT as usize)
}

/// Anonymous memory from the kernel, or null.
fn map(len: usize) -> *mut u8 {
    // SAFETY: a fresh private anonymous mapping aliases nothing.
    let p = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        null_mut()
    } else {
        p.cast()
    }
}

fn mapped_len(layout: Layout) -> usize {
    layout.size().max(1).div_ceil(PAGE) * PAGE
}

impl Heap {
    fn take(&mut self, class: usize) -> *mut u8 {
        let Some(head) = self.free.get_mut(class) else {
            return null_mut();
        };
        if !head.is_null() {
            let block = *head;
            // SAFETY: a block on the free list is one of ours, freed, and holds its link.
            *head = unsafe { (*block).next };
            return block.cast();
        }
        let size = class_size(class);
        let align = size.min(PAGE);
        let mut start = self.bump.next_multiple_of(align);
        if self.bump == 0 && size <= FIRST_CHUNK && !FIRST_TAKEN.swap(true, Ordering::Relaxed) {
            // The first chunk is part of the binary's zero-filled data: no mmap call.
            // SAFETY: only the address is taken; FIRST_TAKEN hands the arena to one heap,
            // once.
            start = unsafe { std::ptr::addr_of_mut!(FIRST.0) }.cast::<u8>() as usize;
            self.end = start + FIRST_CHUNK;
        } else if start + size > self.end {
            // What is left of the old chunk is dropped: at most one block's worth.
            let chunk = map(CHUNK);
            if chunk.is_null() {
                return null_mut();
            }
            start = chunk as usize;
            self.end = start + CHUNK;
        }
        self.bump = start + size;
        start as *mut u8
    }

    fn give_back(&mut self, block: *mut u8, class: usize) {
        if let Some(head) = self.free.get_mut(class) {
            let block = block.cast::<FreeBlock>();
            // SAFETY: the block was handed out for this class, is at least 16 bytes and
            // aligned to 16, and its owner has given it up.
            unsafe { (*block).next = *head };
            *head = block;
        }
    }
}

// SAFETY: blocks are distinct (each carved once from a chunk, or reused only after it was
// freed), at least the requested size, and aligned as asked (see class_of); mappings are
// page-aligned.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class_of(layout) {
            Some(class) => self
                .heap
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(class),
            None if layout.align() <= PAGE => map(mapped_len(layout)),
            None => null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class_of(layout) {
            Some(class) => self
                .heap
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .give_back(ptr, class),
            None => {
                // SAFETY: the block is a mapping of this length made by alloc.
                unsafe { libc::munmap(ptr.cast(), mapped_len(layout)) };
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Growing within the block's class needs no copy (a Vec or String growing by
        // doubling moves only when it passes its class).
        if let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) {
            if class_of(layout).is_some() && class_of(layout) == class_of(new_layout) {
                return ptr;
            }
            // SAFETY: as GlobalAlloc's own realloc: a new block, the old contents copied,
            // the old block freed.
            unsafe {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                return new;
            }
        }
        null_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let l = |size, align| Layout::from_size_align(size, align).unwrap();
        assert_eq!(class_of(l(1, 1)), Some(0));
        assert_eq!(class_of(l(16, 8)), Some(0));
        assert_eq!(class_of(l(17, 8)), Some(1));
        assert_eq!(class_of(l(8, 64)), Some(2), "alignment raises the class");
        assert_eq!(class_of(l(1 << 20, 8)), Some(CLASSES - 1));
        assert_eq!(class_of(l((1 << 20) + 1, 8)), None, "mapped on its own");
        assert_eq!(class_of(l(16, 8192)), None);
    }

    #[test]
    fn blocks_are_distinct_aligned_and_reused() {
        let heap = Allocator::new();
        let mut blocks = Vec::new();
        for i in 0..5000usize {
            let layout = Layout::from_size_align(1 + i % 3000, 1 << (i % 7)).unwrap();
            // SAFETY: a non-zero layout.
            let p = unsafe { heap.alloc(layout) };
            assert!(!p.is_null());
            assert_eq!(p as usize % layout.align(), 0);
            // SAFETY: the block is ours and at least layout.size() long.
            unsafe { std::ptr::write_bytes(p, (i % 251) as u8, layout.size()) };
            blocks.push((p, layout, (i % 251) as u8));
        }
        for &(p, layout, byte) in &blocks {
            // SAFETY: still allocated; nothing else wrote it.
            let slice = unsafe { std::slice::from_raw_parts(p, layout.size()) };
            assert!(slice.iter().all(|&b| b == byte), "blocks overlap");
        }
        let first = blocks[0];
        for &(p, layout, _) in &blocks {
            // SAFETY: allocated above with this layout, freed once.
            unsafe { heap.dealloc(p, layout) };
        }
        // SAFETY: as above.
        let again = unsafe { heap.alloc(first.1) };
        assert!(
            blocks.iter().any(|&(p, _, _)| p == again),
            "a freed block is reused"
        );
    }

    #[test]
    fn the_first_chunk_goes_to_one_heap_only() {
        let (a, b) = (Allocator::new(), Allocator::new());
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: fresh heaps, blocks of the layout asked for, freed with it.
        unsafe {
            let (pa, pb) = (a.alloc(layout), b.alloc(layout));
            assert!(!pa.is_null() && !pb.is_null());
            let arena = std::ptr::addr_of_mut!(FIRST.0).cast::<u8>() as usize;
            let in_arena = |p: *mut u8| (arena..arena + FIRST_CHUNK).contains(&(p as usize));
            // Other tests' heaps may have taken it first; never both of these.
            assert!(!(in_arena(pa) && in_arena(pb)));
            a.dealloc(pa, layout);
            b.dealloc(pb, layout);
        }
    }

    #[test]
    fn large_blocks_and_realloc() {
        let heap = Allocator::new();
        let big = Layout::from_size_align(3 << 20, 8).unwrap();
        // SAFETY: non-zero layouts; each block freed once with its layout.
        unsafe {
            let p = heap.alloc(big);
            assert!(!p.is_null());
            std::ptr::write_bytes(p, 7, big.size());
            heap.dealloc(p, big);

            let small = Layout::from_size_align(20, 4).unwrap();
            let p = heap.alloc(small);
            std::ptr::write_bytes(p, 9, 20);
            let same = heap.realloc(p, small, 30);
            assert_eq!(same, p, "20 and 30 bytes share the 32-byte class");
            let moved = heap.realloc(same, Layout::from_size_align(30, 4).unwrap(), 2 << 20);
            assert!(!moved.is_null());
            assert!(std::slice::from_raw_parts(moved, 20)
                .iter()
                .all(|&b| b == 9));
            heap.dealloc(moved, Layout::from_size_align(2 << 20, 4).unwrap());
        }
    }
}
