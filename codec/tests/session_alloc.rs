//! Parsing token and data TSDUs allocates nothing; neither does emitting
//! into a buffer with room. Counted with a global allocator that counts
//! the allocations of the current thread while enabled.
//!
//! (`unsafe` is confined to this test binary: a `GlobalAlloc` impl cannot
//! be written without it. The library itself forbids unsafe code.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rtse_codec::hex;
use rtse_codec::session::*;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    (COUNT.with(Cell::get), r)
}

#[test]
fn parsing_and_emitting_tsdus_does_not_allocate() {
    let tsdus: Vec<Vec<u8>> = [
        "1500",                                                                                                // GTC
        "1600",                                                                                                // GTA
        "0211100101c10c610a3008020103a003020100",         // PT + user data (ex4)
        "0208100101c103020100",                           // PT (ex6)
        "0100010061653063020103a05e045c2881b5020105a081", // GT + DT
        "0100 2d05 2903020101",                           // GT + AS
        "0100 3103 2a0131",                               // GT + MIP
        "0100 3203 2a0131",                               // GT + MIA
        "0100 2903 2a0132",                               // GT + AE
        "0100 2a03 2a0132",                               // GT + AEA
        "0100 1903 320107",                               // GT + AI
        "0100 1d2a 2123 0a0a4d54412d412f30303031 0b0d3235303130313131353530305a 2903020101 2a0131 2903020102", // GT + AR
        "1923110103c11ea01c611a3018020101a0136411800100be0c280a020103a005b603800106", // AB (ex7)
        "1a00",                                                                       // AA
        "1505 9901aa c100",                                                           // GTC with unknown parameters
        "0e0f 0509 130100 160102 1a0100 1402 0249",                                   // AC
    ]
    .iter()
    .map(|x| hex::decode(x).unwrap())
    .collect();
    // The counter counts.
    assert_eq!(allocations(|| std::hint::black_box(vec![1u8; 3])).0, 1);
    let mut out = Vec::with_capacity(4096);
    for b in &tsdus {
        let (n, t) = allocations(|| parse_tsdu(b).unwrap());
        // CN/AC/RF/AR are boxed (one allocation): they are large and rare,
        // and boxing keeps every token TSDU small. Everything else: none.
        let boxed = t.iter().any(|s| matches!(s.kind(), SpduKind::Cn | SpduKind::Ac | SpduKind::Rf | SpduKind::Ar));
        assert_eq!(n, usize::from(boxed), "parse_tsdu({}) allocated", hex::encode(b));
        let (n, seen) = allocations(|| {
            let mut k = 0usize;
            for s in &t {
                k += s.user_data().map_or(0, <[u8]>::len) + s.params().iter().count() + s.name().len();
            }
            k
        });
        assert_eq!(n, 0);
        assert!(seen > 0);
        out.clear();
        let (n, ()) = allocations(|| emit_tsdu(&t, &mut out));
        assert_eq!(n, 0, "emit_tsdu({}) allocated", hex::encode(b));
        assert_eq!(out, *b);
    }
    // Constructors too.
    let (n, t) = allocations(|| Tsdu::after_gt(Spdu::mip(SerialNumber::new(42).unwrap(), true)));
    assert_eq!((n, t.len()), (0, 2));
}
