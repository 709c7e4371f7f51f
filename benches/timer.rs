//! Timer-wheel benchmark: this file owns measuring the wheel's three hot paths — filing a
//! deadline, advancing through due slots, and computing the poll timeout of a sparse wheel.
//! It never asserts a speed (numbers vary by machine); it prints `name: N ns/op` lines to
//! compare runs side by side.
//!
//! Run with `make bench-micro` or `cargo bench --features bench-internals --bench timer`.

use h1server::__bench::{DEFAULT_SLOTS, Tick, Wheel};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Entries per round: a busy server's worth of connections, each with one live deadline.
const N: usize = 100_000;
/// Measured rounds per benchmark after one warm-up round; the fastest is reported, as the
/// least disturbed by other processes.
const ROUNDS: usize = 10;

/// Marsaglia's xorshift64: deterministic, random-ish ticks without the `rand` crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Runs `f` once to warm up and `ROUNDS` times measured; prints the best time per op.
fn bench(name: &str, ops: usize, mut f: impl FnMut() -> Duration) {
    f();
    let best = (0..ROUNDS).map(|_| f()).min().unwrap_or_default();
    println!("{name}: {:.1} ns/op", best.as_nanos() as f64 / ops as f64);
}

fn main() {
    let tick = Duration::from_millis(10);
    let start = Instant::now();
    let at = |t: Tick| start + tick * t as u32;
    let rotation = DEFAULT_SLOTS as u64;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    // Deadlines spread over one rotation ahead (5 s header and 10 s write deadlines fit).
    let offsets: Vec<Tick> = (0..N).map(|_| 1 + rng.next() % rotation).collect();

    let mut wheel = Wheel::new(tick, start);
    let mut fired: Vec<(u32, Tick)> = Vec::with_capacity(N);
    let mut base: Tick = 0;

    // File N deadlines (timed), then advance through the rotation so the wheel is empty
    // again (untimed). Slot Vecs keep their capacity between rounds, so the measured
    // rounds are the allocation-free steady state.
    bench("insert (100k random ticks, 1024 slots)", N, || {
        let t0 = Instant::now();
        for (i, &offset) in offsets.iter().enumerate() {
            wheel.insert(black_box(base + offset), i as u32);
        }
        let insert = t0.elapsed();
        fired.clear();
        wheel.advance(at(base + rotation), &mut fired);
        base += rotation;
        insert
    });

    bench("advance (per fired entry, tick by tick)", N, || {
        for (i, &offset) in offsets.iter().enumerate() {
            wheel.insert(base + offset, i as u32);
        }
        let t0 = Instant::now();
        for t in base + 1..=base + rotation {
            fired.clear();
            wheel.advance(black_box(at(t)), &mut fired);
        }
        let elapsed = t0.elapsed();
        base += rotation;
        elapsed
    });

    bench("advance (one jump over a long sleep, per entry)", N, || {
        for (i, &offset) in offsets.iter().enumerate() {
            wheel.insert(base + offset, i as u32);
        }
        fired.clear();
        let t0 = Instant::now();
        wheel.advance(black_box(at(base + 3 * rotation)), &mut fired);
        let elapsed = t0.elapsed();
        base += 3 * rotation;
        elapsed
    });

    // A sparse wheel: one entry kept about a rotation ahead (re-filed when it fires), so
    // each tick's bitmap scan walks most of the words.
    wheel.insert(base + rotation - 1, 1);
    const TICKS: usize = 100_000;
    bench("advance (one tick, sparse wheel)", TICKS, || {
        let t0 = Instant::now();
        for t in 1..=TICKS as u64 {
            fired.clear();
            let now = wheel.advance(black_box(at(base + t)), &mut fired);
            if !fired.is_empty() {
                wheel.insert(now + rotation - 1, 1);
            }
        }
        let elapsed = t0.elapsed();
        base += TICKS as u64;
        elapsed
    });

    // One entry in the slot just before the first one scanned: the longest bitmap scan.
    let mut sparse = Wheel::new(tick, start);
    sparse.insert(rotation, 1u32);
    const QUERIES: usize = 1_000_000;
    bench("next_timeout (sparse wheel)", QUERIES, || {
        let t0 = Instant::now();
        for _ in 0..QUERIES {
            black_box(sparse.next_timeout(black_box(start)));
        }
        t0.elapsed()
    });
}
