//! The hot path allocates nothing: parsing a User-data that carries one
//! PDV (every RTSE APDU after the connection: RT-TURN-PLEASE in a PT,
//! RTTR segments in DT), and reading its fields.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rtse_codec::hex;
use rtse_codec::presentation::{self as pres, PdvValue, Ppdu, PpduSlot};

struct Counting;

thread_local! {
    // Counts only this thread's allocations (the test harness allocates on others).
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(|c| c.get());
    f();
    ALLOCS.with(|c| c.get()) - before
}

#[test]
fn single_pdv_user_data_parses_without_allocating() {
    let pt = hex::decode("610a3008020103a003020100").unwrap();
    let mut dt = hex::decode("61653063020103a05e045c").unwrap();
    dt.extend((0..92u8).map(|i| i.wrapping_mul(7)));
    // Indefinite lengths too (a peer's choice, still no allocation).
    let indef = hex::decode("61803080020103a080020100000000000000").unwrap();
    for b in [&pt, &dt, &indef] {
        let n = allocations(|| {
            let (u, rest) = pres::parse_user_data(b).unwrap();
            assert!(rest.is_empty());
            let p = u.first().unwrap();
            assert_eq!(p.pcid, 3);
            assert!(matches!(p.value, PdvValue::Single(_)));
            assert_eq!(u.pdvs().count(), 1);
            let (pp, _) = pres::parse_for(PpduSlot::Data, b).unwrap();
            assert!(matches!(pp, Ppdu::UserData(_)));
            assert_eq!(pp.name(), "USER-DATA");
        });
        assert_eq!(n, 0, "allocations parsing {}", hex::encode(b));
    }
    // The counter works.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8]))) > 0);
}
