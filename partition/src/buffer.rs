//! Large buffers for data that moves between files and ranks.
//!
//! A freshly allocated buffer costs one page fault per 4 KiB page on first touch; on virtual machines such a
//! fault costs several microseconds, so filling 30 MB of new memory spends longer faulting than copying (the
//! same data copied into a warm buffer is ten times faster). Buffers of at least a few huge pages are
//! therefore asked to be backed by transparent huge pages (one fault per 2 MiB, as numpy does for its
//! arrays), which works wherever the kernel's THP mode is `always` or `madvise`.

use bytemuck::Pod;

const HUGE: usize = 2 << 20;

/// Advise the kernel to back `len` bytes at `ptr` with transparent huge pages (only whole huge pages inside
/// the region; nothing for regions smaller than four). Only future page faults are affected, so call this
/// before the memory is first written.
pub fn advise_huge(ptr: *mut u8, len: usize) {
    if len < 4 * HUGE {
        return;
    }
    let start = (ptr as usize).div_ceil(HUGE) * HUGE;
    let end = (ptr as usize + len) / HUGE * HUGE;
    #[cfg(target_os = "linux")]
    if end > start {
        // SAFETY: the range lies inside the caller's region; MADV_HUGEPAGE only changes how later faults
        // are served and never the contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, end);
}

/// A vector of `n` zeroed records. Large vectors come from the allocator's zeroed pages (untouched until
/// written) and are backed by huge pages.
pub fn zeroed<T: Pod>(n: usize) -> Vec<T> {
    let layout = std::alloc::Layout::array::<T>(n).expect("buffer size overflows");
    if layout.size() == 0 {
        return vec![T::zeroed(); n];
    }
    // SAFETY: the layout is non-empty; all-zero bytes are a valid `T` (Pod); the vector takes ownership of
    // an allocation of exactly `n` records made with the global allocator and this layout.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout);
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        advise_huge(ptr, layout.size());
        Vec::from_raw_parts(ptr as *mut T, n, n)
    }
}

/// Reserve room for `extra` more records, backed by huge pages when large.
pub fn reserve<T: Pod>(v: &mut Vec<T>, extra: usize) {
    if v.capacity() - v.len() >= extra {
        return;
    }
    v.reserve(extra);
    let spare = v.spare_capacity_mut();
    advise_huge(spare.as_mut_ptr() as *mut u8, std::mem::size_of_val(spare));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_and_reserved_buffers_are_usable() {
        let big: Vec<u32> = zeroed(5 << 20);
        assert!(big.iter().all(|&x| x == 0));
        let mut v = vec![1u64, 2];
        reserve(&mut v, 3 << 20);
        assert!(v.capacity() >= (3 << 20) + 2);
        assert_eq!(v, vec![1, 2]);
        assert!(zeroed::<f64>(0).is_empty());
    }
}
