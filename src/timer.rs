//! Deadlines: this file owns the hashed timing wheel that tells the event loop which
//! connections' deadlines (header read, body read, write, idle, drain) may have passed and how
//! long it may sleep in `poll`. It never reads the clock, starts a thread, sorts, or allocates
//! in the steady state: the caller passes `now` in, and the caller re-checks the deadline
//! stored on its own connection when an entry fires.
//!
//! # How the event loop uses it (lazy deadlines)
//!
//! Each connection stores its one live deadline itself. Moving that deadline *later* is a
//! field write; the wheel is touched only when the deadline moves *earlier* than what is
//! already filed (or nothing is filed). When an entry fires, the loop compares the
//! connection's stored deadline with `now`: passed → act; later → file it again; gone (the
//! connection closed or its generation changed) → ignore. Stale entries cost one check.
//!
//! (The wheel is private to the engine, so this example runs as the unit test
//! `module_doc_example`.)
//!
//! ```ignore
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let mut wheel = Wheel::new(Duration::from_millis(10), start);
//! let deadline = start + Duration::from_millis(25);
//! wheel.insert(wheel.tick_of(deadline), 7u32); // e.g. a slab index
//! assert_eq!(wheel.next_timeout(start), Some(Duration::from_millis(30)));
//!
//! let mut fired = Vec::new();
//! wheel.advance(start + Duration::from_millis(20), &mut fired);
//! assert!(fired.is_empty()); // tick 2 passed; the entry is filed for tick 3
//! wheel.advance(start + Duration::from_millis(30), &mut fired);
//! assert_eq!(fired, [(7, 3)]); // the caller now checks connection 7's own deadline
//! ```

use std::time::{Duration, Instant};

/// A tick number: time since the wheel's start divided by the tick length.
pub type Tick = u64;

/// Slots of [`Wheel::new`]: 1024 × 10 ms = 10.24 s per rotation, which covers the default
/// header (5 s) and write (10 s) deadlines exactly; longer ones (body read, idle, drain) fire
/// early and are re-filed by the caller, once per rotation.
pub const DEFAULT_SLOTS: usize = 1024;

/// A hashed timing wheel of `(item, due tick)` entries; see the module docs.
#[derive(Debug)]
pub struct Wheel<T> {
    /// The instant of tick 0, so ticks are plain integers and no `Instant` is stored per entry.
    start: Instant,
    /// Tick length in nanoseconds (non-zero), kept as an integer for exact tick arithmetic.
    tick_ns: u64,
    /// `slots.len() - 1`: the slot of tick `t` is `t & mask`, since the length is a power of two.
    mask: u64,
    /// One Vec per slot, holding the entries due at ticks congruent to that slot. The Vecs
    /// keep their capacity after firing, so a steady load allocates nothing.
    slots: Box<[Vec<(T, Tick)>]>,
    /// One bit per slot, set while the slot holds entries: finding the next non-empty slot
    /// scans `slots / 64` words instead of every slot.
    occupied: Box<[u64]>,
    /// Entries filed for a tick already advanced past; they fire on the very next `advance`
    /// even if that call does not move to a new tick.
    overdue: Vec<(T, Tick)>,
    /// The last tick `advance` moved to: every slot up to and including it has fired.
    now: Tick,
    /// Entries held (slots + overdue), so `is_empty` is O(1).
    len: usize,
}

impl<T: Copy> Wheel<T> {
    /// A wheel of [`DEFAULT_SLOTS`] slots whose tick 0 is `start`.
    pub fn new(tick: Duration, start: Instant) -> Self {
        Wheel::with_slots(tick, DEFAULT_SLOTS, start)
    }

    /// A wheel of `slots` slots (a power of two, at least 64) whose tick 0 is `start`.
    ///
    /// # Panics
    ///
    /// If `slots` is not a power of two or is below 64, or `tick` is zero or longer than
    /// `u64::MAX` nanoseconds (about 584 years).
    pub fn with_slots(tick: Duration, slots: usize, start: Instant) -> Self {
        assert!(
            slots.is_power_of_two() && slots >= 64,
            "slots must be a power of two ≥ 64"
        );
        let tick_ns = u64::try_from(tick.as_nanos()).expect("tick too long");
        assert!(tick_ns > 0, "tick must be longer than zero");
        Wheel {
            start,
            tick_ns,
            mask: slots as u64 - 1,
            slots: (0..slots).map(|_| Vec::new()).collect(),
            occupied: vec![0; slots / 64].into_boxed_slice(),
            overdue: Vec::new(),
            now: 0,
            len: 0,
        }
    }

    /// The tick at which `at` falls due: ceil((at - start) / tick); an instant before start → 0.
    ///
    /// Rounding up means an entry filed at `tick_of(deadline)` never fires before `deadline`.
    pub fn tick_of(&self, at: Instant) -> Tick {
        self.tick_of_nanos(self.nanos_of(at))
    }

    /// `at` as u64 nanoseconds since the wheel's start (0 before it; saturating: 584
    /// years). The loop takes it once per turn, so that a deadline armed during the turn
    /// is an addition and a division (`tick_of_nanos`) rather than `Instant` arithmetic.
    pub fn nanos_of(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.start);
        nanos(d)
    }

    /// The tick at which the instant `nanos` after the start falls due (rounded up, as
    /// `tick_of`). In u64: a u128 division is a libcall (`__udivti3`).
    pub fn tick_of_nanos(&self, nanos: u64) -> Tick {
        nanos.div_ceil(self.tick_ns)
    }

    /// The last tick the wheel was advanced to (0 before the first `advance`).
    pub fn current_tick(&self) -> Tick {
        self.now
    }

    /// Files `item` to fire at tick `due` (if due ≤ the last advanced tick, it fires on the
    /// next advance). An entry further than one rotation away fires early, when its slot
    /// comes round (the caller re-checks its own deadline and re-files).
    ///
    /// O(1); allocates only when a slot holds more entries than it ever has before.
    ///
    /// # Warning
    ///
    /// The wheel keeps one rotation (`slots × tick`, 10.24 s by default) of exact time.
    /// An entry with `due > current_tick() + slots` fires at the first tick after
    /// `current_tick()` that maps to the same slot, i.e. at `due - k × slots` for the
    /// largest `k` that keeps it in the future — *before* `due`. The fired pair carries
    /// the `due` it was filed with, so the caller can tell: whenever an entry fires, compare
    /// the deadline stored on your own object with `now` and re-file it if it has not
    /// passed. Never act on a fired entry without that check.
    pub fn insert(&mut self, due: Tick, item: T) {
        self.len += 1;
        if due <= self.now {
            self.overdue.push((item, due));
            return;
        }
        let slot = (due & self.mask) as usize;
        self.slots[slot].push((item, due));
        self.occupied[slot / 64] |= 1 << (slot % 64);
    }

    /// How long the event loop may sleep: None when the wheel is empty, else the time from
    /// `now` until the next non-empty slot's tick instant (Duration::ZERO if already due).
    /// Uses the bitmap.
    ///
    /// The slot's tick is where its entries fire (early for entries more than a rotation
    /// away, see [`Wheel::insert`]), so sleeping this long never oversleeps a deadline.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.overdue.is_empty() {
            return Some(Duration::ZERO);
        }
        let distance = self.distance_to_occupied(self.slot_of(self.now.wrapping_add(1)))?;
        let tick = self.now.saturating_add(1 + distance);
        let at = Duration::from_nanos(tick.saturating_mul(self.tick_ns));
        Some(at.saturating_sub(now.saturating_duration_since(self.start)))
    }

    /// Moves the wheel to `now`, appending to `fired` every (item, due_tick) whose slot was
    /// passed (including slots skipped when the loop slept long: if more than a full rotation
    /// elapsed, every slot fires once). Returns the current tick.
    ///
    /// The current tick is `floor((now - start) / tick)`: a tick fires once its instant has
    /// passed. Overdue entries come first, then slots in tick order, each in insertion order.
    /// Empty slots are skipped through the bitmap. A `now` earlier than the last one moves
    /// nothing (overdue entries still fire). `fired` is only appended to; reuse one Vec
    /// across calls to keep the loop allocation-free.
    pub fn advance(&mut self, now: Instant, fired: &mut Vec<(T, Tick)>) -> Tick {
        self.len -= self.overdue.len();
        fired.append(&mut self.overdue);
        // u64 nanoseconds cover 584 years; a u64 division is several times cheaper than u128.
        let target = self.nanos_of(now) / self.tick_ns;
        if target <= self.now {
            return self.now;
        }
        if self.len == 0 {
            self.now = target;
            return target;
        }
        // Ticks now+1 ..= now+span are due; more than one rotation visits each slot once.
        let span = (target - self.now).min(self.slots.len() as u64);
        let mut step = 1;
        while step <= span {
            let Some(distance) = self.distance_to_occupied(self.slot_of(self.now + step)) else {
                break;
            };
            step += distance;
            if step > span {
                break;
            }
            let slot = self.slot_of(self.now + step);
            self.len -= self.slots[slot].len();
            // `append` moves the entries out and leaves the slot's capacity in place.
            fired.append(&mut self.slots[slot]);
            self.occupied[slot / 64] &= !(1 << (slot % 64));
            step += 1;
        }
        self.now = target;
        target
    }

    /// Entries filed and not yet fired (stale ones included: the wheel cannot tell).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is filed, i.e. the loop may sleep without a timeout.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of tick `t`.
    fn slot_of(&self, t: Tick) -> usize {
        (t & self.mask) as usize
    }

    /// Slots from `from` (inclusive, wrapping round) to the first non-empty one, or `None`
    /// when every slot is empty. Scans at most `slots / 64 + 1` bitmap words.
    fn distance_to_occupied(&self, from: usize) -> Option<u64> {
        let words = self.occupied.len(); // a power of two, like the slot count
        let (first, bit) = (from / 64, from % 64);
        for i in 0..=words {
            let index = (first + i) & (words - 1);
            let word = match i {
                0 => self.occupied[index] & (!0 << bit),
                _ if i == words => self.occupied[index] & !(!0 << bit),
                _ => self.occupied[index],
            };
            if word != 0 {
                let slot = index * 64 + word.trailing_zeros() as usize;
                return Some(((slot + self.slots.len() - from) & self.mask as usize) as u64);
            }
        }
        None
    }
}

/// `d` in u64 nanoseconds, saturating (584 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(1);

    /// The instant of tick `t` on a wheel started at `start`.
    fn at(start: Instant, t: Tick) -> Instant {
        start + TICK * t as u32
    }

    /// A wheel of `slots` slots already advanced to tick `base`.
    fn wheel_at(slots: usize, base: Tick) -> (Wheel<u32>, Instant) {
        let start = Instant::now();
        let mut wheel = Wheel::with_slots(TICK, slots, start);
        wheel.advance(at(start, base), &mut Vec::new());
        assert_eq!(wheel.current_tick(), base);
        (wheel, start)
    }

    /// Where an entry filed for `due` on a wheel at `base` fires (see `insert`'s warning).
    /// `base` itself stands for "the next advance, even without moving".
    fn expected_fire(slots: usize, base: Tick, due: Tick) -> Tick {
        let slots = slots as u64;
        match due {
            _ if due <= base => base,
            _ if due - base <= slots => due,
            _ => base + (due - base - 1) % slots + 1,
        }
    }

    const BASES: [Tick; 8] = [0, 1, 63, 64, 65, 1000, 1023, 5_000_000];

    #[test]
    fn every_offset_fires_exactly_at_its_tick_or_its_slot_tick() {
        for base in BASES {
            for offset in 0..2 * DEFAULT_SLOTS as u64 {
                let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, base);
                let due = (base + offset).saturating_sub(1); // also one tick in the past
                wheel.insert(due, 9);
                let when = expected_fire(DEFAULT_SLOTS, base, due);
                let mut fired = Vec::new();
                if when > base {
                    wheel.advance(at(start, when - 1), &mut fired);
                    assert!(
                        fired.is_empty(),
                        "base {base} due {due} fired before {when}"
                    );
                    assert_eq!(wheel.len(), 1);
                }
                assert_eq!(wheel.advance(at(start, when), &mut fired), when);
                assert_eq!(
                    fired,
                    [(9, due)],
                    "base {base} due {due}: expected at {when}"
                );
                assert!(wheel.is_empty() && wheel.next_timeout(at(start, when)).is_none());
            }
        }
    }

    #[test]
    fn stepping_one_tick_at_a_time_fires_once_at_the_right_tick() {
        const SLOTS: usize = 64;
        for base in [0, 5, 63, 64, 100] {
            for offset in 0..3 * SLOTS as u64 {
                let (mut wheel, start) = wheel_at(SLOTS, base);
                let due = base + offset;
                wheel.insert(due, 1);
                let when = expected_fire(SLOTS, base, due);
                let mut fired = Vec::new();
                for t in base..=base + 2 * SLOTS as u64 {
                    wheel.advance(at(start, t), &mut fired);
                    let want: &[(u32, Tick)] = if t >= when { &[(1, due)] } else { &[] };
                    assert_eq!(fired, want, "base {base} due {due} at tick {t}");
                }
            }
        }
    }

    #[test]
    fn next_timeout_is_the_time_to_the_earliest_entry() {
        for base in BASES {
            for offset in 1..2 * DEFAULT_SLOTS as u64 {
                let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, base);
                wheel.insert(base + offset, 1);
                wheel.insert(base + offset + 3, 2);
                // The second entry may be more than a rotation away and so fire first.
                let when = expected_fire(DEFAULT_SLOTS, base, base + offset).min(expected_fire(
                    DEFAULT_SLOTS,
                    base,
                    base + offset + 3,
                ));
                let now = at(start, base);
                assert_eq!(wheel.next_timeout(now), Some(TICK * (when - base) as u32));
                // Part-way through the current tick, and after oversleeping.
                let later = now + TICK / 4;
                assert_eq!(
                    wheel.next_timeout(later),
                    Some(TICK * (when - base) as u32 - TICK / 4)
                );
                assert_eq!(
                    wheel.next_timeout(at(start, when + 5)),
                    Some(Duration::ZERO)
                );
            }
        }
    }

    #[test]
    fn next_timeout_is_zero_for_overdue_and_none_when_empty() {
        let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, 10);
        assert_eq!(wheel.next_timeout(start), None);
        wheel.insert(10, 1);
        assert_eq!(wheel.next_timeout(at(start, 10)), Some(Duration::ZERO));
        let mut fired = Vec::new();
        wheel.advance(at(start, 10), &mut fired); // fires without moving a tick
        assert_eq!(
            (fired.as_slice(), wheel.next_timeout(start)),
            (&[(1, 10)][..], None)
        );
    }

    #[test]
    fn a_long_sleep_fires_everything_exactly_once() {
        for base in BASES {
            let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, base);
            let n = 3 * DEFAULT_SLOTS as u64; // two entries per slot, some beyond a rotation
            for i in 0..n {
                wheel.insert(base + 1 + i, i as u32);
            }
            wheel.insert(base, u32::MAX); // overdue
            assert_eq!(wheel.len(), n as usize + 1);
            let mut fired = Vec::new();
            let target = base + 5 * DEFAULT_SLOTS as u64 + 17;
            assert_eq!(wheel.advance(at(start, target), &mut fired), target);
            assert_eq!(fired.len(), n as usize + 1);
            let mut seen: Vec<u32> = fired.iter().map(|&(item, _)| item).collect();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(
                seen.len(),
                n as usize + 1,
                "an entry fired twice or not at all"
            );
            assert!(wheel.is_empty() && wheel.next_timeout(at(start, target)).is_none());
            // Overdue first, then tick order.
            assert_eq!(fired[0], (u32::MAX, base));
            assert_eq!(fired[1], (0, base + 1));
        }
    }

    #[test]
    fn a_sleep_shorter_than_a_rotation_fires_only_what_is_due() {
        let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, 0);
        for due in 1..=1000 {
            wheel.insert(due, due as u32);
        }
        let mut fired = Vec::new();
        wheel.advance(at(start, 600), &mut fired);
        let dues: Vec<Tick> = fired.iter().map(|&(_, due)| due).collect();
        assert_eq!(dues, (1..=600).collect::<Vec<_>>());
        assert_eq!(wheel.len(), 400);
        assert_eq!(wheel.next_timeout(at(start, 600)), Some(TICK));
    }

    #[test]
    fn many_items_in_one_slot_fire_together_in_insertion_order() {
        let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, 3);
        for i in 0..10_000 {
            wheel.insert(50, i);
        }
        wheel.insert(50 + DEFAULT_SLOTS as u64, 10_000); // same slot, next rotation: fires early
        let mut fired = Vec::new();
        wheel.advance(at(start, 49), &mut fired);
        assert!(fired.is_empty());
        wheel.advance(at(start, 50), &mut fired);
        let items: Vec<u32> = fired.iter().map(|&(item, _)| item).collect();
        assert_eq!(items, (0..=10_000).collect::<Vec<_>>());
        assert_eq!(fired[10_000].1, 50 + DEFAULT_SLOTS as u64);
    }

    #[test]
    fn entries_filed_during_and_after_advance_fire_on_the_next_advance() {
        let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, 0);
        wheel.insert(5, 1);
        let mut fired = Vec::new();
        assert_eq!(wheel.advance(at(start, 5), &mut fired), 5);
        // The caller handles what fired: re-file for the same (past) tick, a past tick, the
        // next tick and a later one, while the fired Vec is still in hand.
        for &(item, due) in &fired {
            wheel.insert(due, item + 10);
        }
        wheel.insert(2, 20);
        wheel.insert(6, 30);
        wheel.insert(8, 40);
        fired.clear();
        wheel.advance(at(start, 5) + TICK / 2, &mut fired); // same tick: only the overdue
        assert_eq!(fired, [(11, 5), (20, 2)]);
        fired.clear();
        wheel.advance(at(start, 6), &mut fired);
        assert_eq!(fired, [(30, 6)]);
        fired.clear();
        wheel.advance(at(start, 7), &mut fired);
        assert!(fired.is_empty());
        wheel.advance(at(start, 8), &mut fired);
        assert_eq!(fired, [(40, 8)]);
    }

    #[test]
    fn time_going_backwards_moves_nothing() {
        let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, 100);
        wheel.insert(101, 1);
        let mut fired = Vec::new();
        assert_eq!(wheel.advance(at(start, 50), &mut fired), 100);
        assert_eq!(
            wheel.advance(start.checked_sub(TICK).unwrap_or(start), &mut fired),
            100
        );
        assert!(fired.is_empty());
        assert_eq!(wheel.advance(at(start, 101), &mut fired), 101);
        assert_eq!(fired, [(1, 101)]);
    }

    #[test]
    fn tick_of_rounds_up_and_clamps_at_start() {
        let start = Instant::now() + Duration::from_secs(1);
        let wheel: Wheel<u8> = Wheel::new(Duration::from_millis(10), start);
        assert_eq!(wheel.tick_of(start), 0);
        assert_eq!(wheel.tick_of(start - Duration::from_millis(500)), 0);
        assert_eq!(wheel.tick_of(start + Duration::from_nanos(1)), 1);
        assert_eq!(wheel.tick_of(start + Duration::from_millis(10)), 1);
        assert_eq!(wheel.tick_of(start + Duration::from_micros(10_001)), 2);
        assert_eq!(wheel.tick_of(start + Duration::from_secs(5)), 500);
    }

    /// What the loop does for each deadline it arms (`Ctx::due_after`): the turn's time
    /// taken once as nanoseconds, then an addition. It must file the deadline at the tick
    /// `tick_of(now + after)` would, or a deadline fires a tick early or late.
    #[test]
    fn a_deadline_from_the_turn_s_nanoseconds_falls_in_the_tick_of_its_instant() {
        let start = Instant::now();
        let wheel: Wheel<u8> = Wheel::new(Duration::from_millis(10), start);
        let nows = [0, 1, 9_999_999, 10_000_000, 10_000_001, 123_456_789_012];
        let afters = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(10) - Duration::from_nanos(1),
            Duration::from_millis(10),
            Duration::from_secs(5),
            Duration::from_secs(75) + Duration::from_nanos(3),
            Duration::from_secs(u64::MAX / 4),
        ];
        for n in nows {
            let now = start + Duration::from_nanos(n);
            assert_eq!(wheel.nanos_of(now), n);
            for after in afters {
                let via_nanos =
                    wheel.tick_of_nanos(wheel.nanos_of(now).saturating_add(nanos(after)));
                match now.checked_add(after) {
                    Some(at) => assert_eq!(via_nanos, wheel.tick_of(at), "{n} + {after:?}"),
                    // Past what an `Instant` holds: the far end of the wheel's u64 time.
                    None => assert_eq!(via_nanos, u64::MAX.div_ceil(10_000_000)),
                }
            }
        }
    }

    #[test]
    fn the_steady_state_does_not_allocate() {
        let (mut wheel, start) = wheel_at(DEFAULT_SLOTS, 0);
        let mut fired = Vec::new();
        let capacities = |w: &Wheel<u32>, f: &Vec<(u32, Tick)>| {
            let slots: Vec<usize> = w.slots.iter().map(Vec::capacity).collect();
            (slots, w.overdue.capacity(), f.capacity())
        };
        // Rounds span three rotations, so every round fills the same slots the same way.
        let round = |w: &mut Wheel<u32>, f: &mut Vec<(u32, Tick)>, r: u64| {
            for i in 0..5_000u64 {
                w.insert(r * 3072 + (i * 7919) % 3072, i as u32);
            }
            w.insert(w.current_tick(), 0);
            for t in 1..=3072 {
                f.clear();
                w.advance(at(start, r * 3072 + t), f);
            }
        };
        round(&mut wheel, &mut fired, 0);
        let before = capacities(&wheel, &fired);
        for r in 1..4 {
            round(&mut wheel, &mut fired, r);
        }
        assert_eq!(capacities(&wheel, &fired), before);
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn slots_must_be_a_power_of_two() {
        Wheel::<u8>::with_slots(TICK, 96, Instant::now());
    }

    #[test]
    #[should_panic(expected = "power of two")]
    fn slots_must_be_at_least_64() {
        Wheel::<u8>::with_slots(TICK, 32, Instant::now());
    }

    /// The example of the module documentation.
    #[test]
    fn module_doc_example() {
        let start = Instant::now();
        let mut wheel = Wheel::new(Duration::from_millis(10), start);
        let deadline = start + Duration::from_millis(25);
        wheel.insert(wheel.tick_of(deadline), 7u32); // e.g. a slab index
        assert_eq!(wheel.next_timeout(start), Some(Duration::from_millis(30)));

        let mut fired = Vec::new();
        wheel.advance(start + Duration::from_millis(20), &mut fired);
        assert!(fired.is_empty()); // tick 2 passed; the entry is filed for tick 3
        wheel.advance(start + Duration::from_millis(30), &mut fired);
        assert_eq!(fired, [(7, 3)]); // the caller now checks connection 7's own deadline
    }
}
