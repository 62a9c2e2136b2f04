//! Parsing the Turn hot path allocates nothing: RTTP, a primitive RTTR, the
//! X.410 Priority. One test in this binary, so the global counter sees only it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn rttp_rttr_and_priority_parse_without_allocating() {
    let rttp = [0x02u8, 0x01, 0x00];
    let mut rttr = vec![0x04u8, 0x81, 0xc8];
    rttr.extend(std::iter::repeat_n(0x55u8, 200));
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..100 {
        let (a, _) = rtse_codec::rtse::parse(&rttp).unwrap();
        assert!(matches!(a, rtse_codec::rtse::RtseApdu::Rttp(0)));
        let (a, _) = rtse_codec::rtse::parse(&rttr).unwrap();
        assert!(matches!(&a, rtse_codec::rtse::RtseApdu::Rttr(d) if d.len() == 200));
        let (p, _) = rtse_codec::x410::parse_priority(&rttp).unwrap();
        assert_eq!(p, 0);
        let (p, _) = rtse_codec::x410::parse(rtse_codec::x410::Slot::TokenPlease, &rttp).unwrap();
        assert_eq!(p.name(), "Priority");
    }
    assert_eq!(ALLOCS.load(Ordering::Relaxed) - before, 0);
}
