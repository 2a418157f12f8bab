//! The matrix a decomposition works on, laid out and updated for speed.
//!
//! * **Panels**: rows in groups of four; panel `p`, column `c` holds the real parts of rows
//!   `4p … 4p+3`, then their imaginary parts (eight `f64`, one 64-byte cache line: the buffer
//!   starts on a line boundary), so one column operation on a panel is four-wide arithmetic on
//!   contiguous memory. A panel is `n | 1` cells long, so that for even `n` the same column of
//!   successive panels falls in different cache sets.
//! * **Deferred phases**: an MZI is `T = g·R·P` with `g = i·e^{iθ/2}`, `R = [[s, c], [c, −s]]`
//!   real (`s = sin θ/2`, `c = cos θ/2`) and `P = diag(e^{iφ}, 1)`. The stored matrix `S` is
//!   kept such that the true one is `W = diag(ρ)·S·diag(α)`; an MZI then changes `S` by one
//!   complex scaling of one row (or column) and the real rotation `R`, and folds `g` into `ρ`
//!   (or `α`): 4 multiplications and 8 fused multiply-adds per pair of elements instead of 16
//!   multiplications and 12 additions for a general 2×2, in an order that keeps the chain of
//!   successive MZIs short ([`Rotation::pair`]).
//! * **Deferred column operations**: applied a group of four panels at a time (independent
//!   chains of updates keep the arithmetic units busy), a group just before one of its rows is
//!   read or mixed, every group when the list fills (so the matrix streams through memory once
//!   per batch). Column and row operations commute, so only each row's own order matters.
//! * **Swept row operations**: the row MZIs of one Clements step that fall in one panel are
//!   chosen column by column and then applied together, four columns at a time, in one pass
//!   over the rest of the row ([`Work::null_left_run`]). From N = 512 the columns no nulling
//!   of the next 32 steps reads are left to a batch of those steps, whose rows are turned into
//!   lines of eight columns once for the batch ([`apply_avx2`]) rather than once per step.
//! * **A second thread** (from N = 512, when the rayon pool has two threads) takes the work
//!   the nulling does not need soon:
//!   - *far row steps*: Clements' nullings of the next 32 steps read only the columns before a
//!     bound, so the row MZIs of those steps beyond it are kept, and at the next bound handed
//!     to the worker thread, which sweeps them over the far columns left to right and
//!     publishes how far it has come; this thread waits only where it needs those columns;
//!   - *column operations of the rows above the nulling* (both methods): when the list fills,
//!     the groups of panels above every row read so far go to the worker, which brings them
//!     up to date from the bottom up, group by group; when the nulling reaches a group the
//!     worker has not begun, this thread does it itself;
//!   - *help with a Clements column step*: while the nulling moves up the rows making column
//!     operations, the worker brings the groups above it up to date with those made so far
//!     (each group under a lock, never the one the nulling reads or reads next), so the
//!     nulling finds most of them applied ([`Work::help`]);
//!   - *part of a Clements row step*: the nulling sweeps each segment over the first three
//!     quarters of the columns the step reads and publishes it; the worker, when free, sweeps
//!     the published segments over the last quarter, a chunk at a time and in order, until a
//!     segment reaches those columns; the nulling then does the chunks left itself ([`Split`]).
//!
//!   The worker does row steps first (the next bound waits for them). Column operations reach
//!   only columns before the bound, and each element still meets its row and column updates
//!   in their order: the mesh is the same to the last bit (tested). The threads share the
//!   buffer by disjoint cells of each panel ([`Panels`]), never a reference to the whole of it.
//! * AVX2/FMA code where the CPU has it (detected at run time), portable code otherwise; both
//!   give the same mesh (tested).

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use num_complex::Complex64 as C;

use super::matrix::{CMatrix, Simd};
use super::mzi::{Nulling, null_from_left, null_from_right};

/// A structured 2×2 update of two adjacent stored lines (columns or rows) `(x, y)`:
/// `x ← s·ψ·x + c·y`, `y ← c·ψ·x − s·y`, kept as the six real coefficients the arithmetic
/// multiplies by: `s·ψ`, `c·ψ` (real and imaginary parts), `s`, `c`.
#[derive(Clone, Copy)]
struct Rotation {
    k: [f64; 6],
}

impl Rotation {
    const IDENTITY: Self = Self {
        k: [0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
    };

    fn new(psi: C, s: f64, c: f64) -> Self {
        Self {
            k: [s * psi.re, s * psi.im, c * psi.re, c * psi.im, s, c],
        }
    }

    /// The update of one pair `(x, y) = (xr + i·xi, yr + i·yi)`, returned as
    /// `[x'r, x'i, y'r, y'i]`, on scalars or on four lanes at once ([`Lanes`]). Every kernel
    /// below runs this: one multiplication and two multiply-adds per output. `Y_LAST` orders
    /// them for a chain that runs from `y` to `x'` (each output four cycles of latency after
    /// `y`: column operations moving left, the next one's `y` being this one's `x`), otherwise
    /// for a chain from `x` to `y'` (eight cycles after `x`, against eleven for `ψ·x` formed
    /// first: the row operations of a sweep, each one's `x` being the last one's `y`).
    #[inline(always)]
    fn pair<T: Lanes, const Y_LAST: bool>(&self, xr: T, xi: T, yr: T, yi: T) -> [T; 4] {
        let [spr, spi, cpr, cpi, s, c] = self.k.map(T::splat);
        if Y_LAST {
            [
                c.mul_add(yr, spr.mul_sub(xr, spi.mul(xi))),
                c.mul_add(yi, spi.mul_add(xr, spr.mul(xi))),
                s.neg_mul_add(yr, cpr.mul_sub(xr, cpi.mul(xi))),
                s.neg_mul_add(yi, cpi.mul_add(xr, cpr.mul(xi))),
            ]
        } else {
            [
                spr.mul_sub(xr, spi.mul_sub(xi, c.mul(yr))),
                spi.mul_add(xr, spr.mul_add(xi, c.mul(yi))),
                cpr.mul_sub(xr, cpi.mul_add(xi, s.mul(yr))),
                cpi.mul_add(xr, cpr.mul_sub(xi, s.mul(yi))),
            ]
        }
    }

    /// [`Rotation::pair`] on `f64`s.
    #[inline(always)]
    fn scalar<const FMA: bool, const Y_LAST: bool>(
        &self,
        xr: f64,
        xi: f64,
        yr: f64,
        yi: f64,
    ) -> [f64; 4] {
        let l = Scalar::<FMA>;
        self.pair::<_, Y_LAST>(l(xr), l(xi), l(yr), l(yi))
            .map(|v| v.0)
    }
}

/// The arithmetic [`Rotation::pair`] needs: `f64` with or without fused multiply-adds
/// ([`Scalar`]), or four `f64` lanes of an AVX2 register.
trait Lanes: Copy {
    fn splat(v: f64) -> Self;
    fn mul(self, b: Self) -> Self;
    /// `self·b + c`.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// `self·b − c`.
    fn mul_sub(self, b: Self, c: Self) -> Self;
    /// `c − self·b`.
    fn neg_mul_add(self, b: Self, c: Self) -> Self;
}

/// One `f64`; the multiply-adds fused if `FMA` (only where the CPU has them).
#[derive(Clone, Copy)]
struct Scalar<const FMA: bool>(f64);

impl<const FMA: bool> Lanes for Scalar<FMA> {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        Self(v)
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        Self(self.0 * b.0)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        Self(if FMA {
            self.0.mul_add(b.0, c.0)
        } else {
            self.0 * b.0 + c.0
        })
    }
    #[inline(always)]
    fn mul_sub(self, b: Self, c: Self) -> Self {
        self.mul_add(b, Self(-c.0))
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        Self(-self.0).mul_add(b, c)
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256d, _MM_HINT_T0, _mm_prefetch, _mm256_fmadd_pd, _mm256_fmsub_pd, _mm256_fnmadd_pd,
    _mm256_loadu_pd, _mm256_mul_pd, _mm256_permute2f128_pd, _mm256_set1_pd, _mm256_storeu_pd,
    _mm256_unpackhi_pd, _mm256_unpacklo_pd,
};

// SAFETY (every `unsafe` in this impl): these are only reached from functions compiled with
// `target_feature(enable = "avx2,fma")`, which run only where `Simd::detect` found both.
#[cfg(target_arch = "x86_64")]
impl Lanes for __m256d {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        unsafe { _mm256_set1_pd(v) }
    }
    #[inline(always)]
    fn mul(self, b: Self) -> Self {
        unsafe { _mm256_mul_pd(self, b) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        unsafe { _mm256_fmadd_pd(self, b, c) }
    }
    #[inline(always)]
    fn mul_sub(self, b: Self, c: Self) -> Self {
        unsafe { _mm256_fmsub_pd(self, b, c) }
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        unsafe { _mm256_fnmadd_pd(self, b, c) }
    }
}

/// A deferred column operation on columns `(k, k+1)`; rows below `last` are zero (to rounding)
/// in both columns when it is made, so panels wholly below it skip it.
#[derive(Clone, Copy)]
struct ColumnOp {
    k: usize,
    last: usize,
    rot: Rotation,
}

/// The row MZIs of one Clements step whose upper rows lie in panel `p`, from its lane `l0`:
/// `rots[h]` on lanes `l0 + h` and `l0 + h + 1` (lane 4 being lane 0 of panel `p + 1`).
#[derive(Clone, Copy)]
struct Segment {
    p: usize,
    l0: usize,
    len: usize,
    rots: [Rotation; 4],
}

/// The panels seen through a pointer: slices of a column range of one panel at a time, so
/// that two threads can work on disjoint column ranges of the same panels ([`Work`]'s worker).
#[derive(Clone, Copy)]
struct Panels {
    base: *mut f64,
    /// Cells per panel.
    stride: usize,
    count: usize,
}

// SAFETY: a `Panels` only hands out slices through `cells`, whose callers keep the ranges that
// two threads use disjoint (see there); the buffer outlives the worker (`Work` joins it before
// its buffer is freed).
unsafe impl Send for Panels {}

impl Panels {
    /// Columns `cols` of panel `p` (bounds checked).
    ///
    /// # Safety
    /// No other live reference, and no other thread, touches these cells while the slice lives.
    #[allow(clippy::mut_from_ref)]
    unsafe fn cells<'a>(&self, p: usize, cols: Range<usize>) -> &'a mut [f64] {
        assert!(p < self.count && cols.start <= cols.end && cols.end <= self.stride);
        // SAFETY: within the buffer (checked above); exclusive by the caller's contract.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.base.add((p * self.stride + cols.start) * 8),
                cols.len() * 8,
            )
        }
    }
}

/// A list one thread appends to and others read while it grows: slots `0 .. len` are written,
/// published (a release store of `len`) and not written again until the list is emptied.
struct Published<T> {
    /// Not written before they are appended to (a list of a row step's segments is made for
    /// every step, and filling it cost the nulling's thread 2 % of its time at N = 1024).
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    len: AtomicUsize,
}

// SAFETY: a slot is written only by the appending thread, only past `len`, before it is
// published; emptying is left to callers who know no other thread reads.
unsafe impl<T: Send> Sync for Published<T> {}

impl<T: Copy> Published<T> {
    /// Room for `slots` items.
    fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            len: AtomicUsize::new(0),
        }
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// The items published so far.
    fn items(&self) -> &[T] {
        let len = self.len();
        // SAFETY: slots before `len` are written and published, and not written while this
        // borrow may live (`UnsafeCell<MaybeUninit<T>>` has `T`'s layout).
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<T>(), len) }
    }

    /// Appends `item` (there must be room: checked).
    ///
    /// # Safety
    /// Only one thread appends.
    unsafe fn push(&self, item: T) {
        let len = self.len.load(Ordering::Relaxed);
        // SAFETY: slot `len` is read by no thread before it is published below.
        unsafe { *self.slots[len].get() = MaybeUninit::new(item) };
        self.len.store(len + 1, Ordering::Release);
    }

    /// Empties the list.
    ///
    /// # Safety
    /// No other thread reads it meanwhile.
    unsafe fn clear(&self) {
        self.len.store(0, Ordering::Release);
    }
}

/// The deferred column operations, what each panel has had of them, and the help the worker
/// gives with them while the nulling makes them (Clements' column steps, [`Work::help`]).
///
/// While the worker helps, a group of panels is updated only by the thread that holds its
/// lock, and the worker takes only groups above the one after the nulling's (`front`) and from
/// `help_from` on, checking `front` again once it holds the lock (the nulling publishes its
/// group before it takes the lock, so it never finds the worker in the group it reads).
struct Ledger {
    /// The list, appended to by the nulling's thread and emptied by it only while the worker
    /// does not help.
    ops: Published<ColumnOp>,
    /// Per panel: how many operations of the list it has had.
    applied: Box<[AtomicUsize]>,
    /// Per group of panels.
    locks: Box<[AtomicBool]>,
    /// The first group the worker may help with, or `NONE`.
    help_from: AtomicUsize,
    /// The columns it updates: those before the deferral bound.
    help_cols: AtomicUsize,
    /// The group the nulling reads.
    front: AtomicUsize,
    /// The worker is in a pass of help.
    busy: AtomicBool,
}

/// No help ([`Ledger::help_from`]).
const NONE: usize = usize::MAX;

impl Ledger {
    fn new(slots: usize, panels: usize) -> Self {
        Self {
            ops: Published::new(slots),
            applied: (0..panels).map(|_| AtomicUsize::new(0)).collect(),
            locks: (0..panels.div_ceil(GROUP))
                .map(|_| AtomicBool::new(false))
                .collect(),
            help_from: AtomicUsize::new(NONE),
            help_cols: AtomicUsize::new(0),
            front: AtomicUsize::new(NONE),
            busy: AtomicBool::new(false),
        }
    }

    /// Empties the list (every panel having had all of it).
    ///
    /// # Safety
    /// No other thread reads the list meanwhile (the worker does not help).
    unsafe fn clear(&self) {
        // SAFETY: the caller's contract.
        unsafe { self.ops.clear() };
        for a in self.applied.iter() {
            a.store(0, Ordering::Relaxed);
        }
    }

    fn try_lock(&self, g: usize) -> bool {
        let lock = &self.locks[g];
        !lock.load(Ordering::Relaxed)
            && lock
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    fn unlock(&self, g: usize) {
        self.locks[g].store(false, Ordering::Release);
    }

    /// Brings group `g`, in the columns `0 .. cols`, up to date with the list.
    ///
    /// # Safety
    /// The calling thread alone updates the group's panels in those columns meanwhile, and no
    /// other thread reads them.
    unsafe fn catch_up(&self, cells: Panels, g: usize, cols: usize, fma: bool, ascending: bool) {
        let counts = &self.applied[g * GROUP..(g * GROUP + GROUP).min(self.applied.len())];
        let mut applied = [0; GROUP];
        let applied = &mut applied[..counts.len()];
        for (a, b) in applied.iter_mut().zip(counts) {
            *a = b.load(Ordering::Relaxed);
        }
        let ops = self.ops.items();
        if applied.iter().all(|&a| a == ops.len()) {
            return;
        }
        // SAFETY: the caller's contract.
        unsafe { catch_up_group(cells, g, cols, applied, ops, fma, ascending) };
        for (a, b) in applied.iter().zip(counts) {
            b.store(*a, Ordering::Relaxed);
        }
    }

    /// One pass of help, from the group above the one after the nulling's up to `help_from`:
    /// each group it can lock, and the nulling is not about to read, brought up to date.
    fn help(&self, cells: Panels, fma: bool, ascending: bool) {
        self.busy.store(true, Ordering::SeqCst);
        let from = self.help_from.load(Ordering::SeqCst);
        if from != NONE {
            let cols = self.help_cols.load(Ordering::Acquire);
            let front = self.front.load(Ordering::SeqCst).min(self.locks.len());
            for g in (from..front.saturating_sub(1)).rev() {
                if self.help_from.load(Ordering::Relaxed) == NONE {
                    // Stopped: the nulling waits for the pass to end.
                    break;
                }
                if self.applied[g * GROUP].load(Ordering::Relaxed) == self.ops.len()
                    || !self.try_lock(g)
                {
                    continue;
                }
                if self.front.load(Ordering::SeqCst) > g + 1 {
                    // SAFETY: the group is locked, and the nulling has not reached it
                    // (the type's protocol).
                    unsafe { self.catch_up(cells, g, cols, fma, ascending) };
                }
                self.unlock(g);
            }
        }
        self.busy.store(false, Ordering::SeqCst);
    }
}

/// Brings group `g` of panels, in the columns `0 .. cols`, to the end of `ops` ([`catch_up`]),
/// its panels having had `applied` of them (one count per panel of the group, updated).
///
/// # Safety
/// As [`Panels::cells`], for the group's panels in those columns.
unsafe fn catch_up_group(
    cells: Panels,
    g: usize,
    cols: usize,
    applied: &mut [usize],
    ops: &[ColumnOp],
    fma: bool,
    ascending: bool,
) {
    let p0 = g * GROUP;
    let mut ps: [&mut [f64]; GROUP] = std::array::from_fn(|q| {
        if q < applied.len() {
            // SAFETY: the caller's contract.
            unsafe { cells.cells(p0 + q, 0..cols) }
        } else {
            &mut []
        }
    });
    catch_up(
        fma,
        ascending,
        &mut ps[..applied.len()],
        applied,
        ops,
        4 * p0,
    );
}

/// Row steps kept for the columns `from ..`, handed to the worker; it publishes in `progress`
/// the column up to which it has applied them.
struct Batch {
    segments: Vec<Segment>,
    from: usize,
    progress: Arc<AtomicUsize>,
}

/// Deferred column operations that bring the panels `0 .. applied.len()` up to date, in the
/// columns `0 .. cols` ([`Work::flush`]); panel `p` has had `applied[p]` of them. Either thread
/// takes the next group of panels to do from `next` (the last group first: the nulling moves
/// up to them), does it, and marks it `done`; the nulling's thread takes one rather than wait
/// for it.
struct Flush {
    ops: Vec<ColumnOp>,
    applied: Vec<usize>,
    cols: usize,
    fma: bool,
    ascending: bool,
    /// Groups `0 .. next` are not taken yet.
    next: AtomicUsize,
    done: Vec<AtomicBool>,
    /// Groups done.
    finished: AtomicUsize,
}

impl Flush {
    fn groups(&self) -> usize {
        self.done.len()
    }

    /// Takes the next group if it is at least `g`.
    fn take_from(&self, g: usize) -> Option<usize> {
        let next = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                (h > g).then(|| h - 1)
            });
        next.ok().map(|h| h - 1)
    }

    fn is_done(&self, g: usize) -> bool {
        self.done[g].load(Ordering::Acquire)
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire) == self.groups()
    }

    /// Does group `g`, taken by this thread (from `next`).
    ///
    /// # Safety
    /// `cells` is the buffer the flush was made for; every earlier flush is done with group `g`.
    unsafe fn run(&self, cells: Panels, g: usize) {
        let counts = &self.applied[g * GROUP..(g * GROUP + GROUP).min(self.applied.len())];
        let mut applied = [0; GROUP];
        let applied = &mut applied[..counts.len()];
        applied.copy_from_slice(counts);
        let (ops, fma, ascending) = (&self.ops, self.fma, self.ascending);
        // SAFETY: a group taken from `next` is this thread's alone, in the flush's columns,
        // until it is marked done (the caller's contract orders it after earlier flushes).
        unsafe { catch_up_group(cells, g, self.cols, applied, ops, fma, ascending) };
        self.done[g].store(true, Ordering::Release);
        self.finished.fetch_add(1, Ordering::AcqRel);
    }
}

/// A Clements row step split between the threads ([`Work::null_left_run`]): the nulling
/// chooses the segments and sweeps each over the columns before `cols`, and publishes it;
/// either thread sweeps the published segments over `cols`, [`SPLIT_CHUNK`] at a time and
/// chunk after chunk (the rows two segments share must meet them in order), the worker when it
/// is free. The first segment that reads a column of `cols` closes the list; the nulling then
/// sweeps the chunks not taken yet itself and waits for the rest, and the segments after it
/// sweep themselves in full.
struct Split {
    cols: Range<usize>,
    segments: Published<Segment>,
    /// No more segments will come.
    closed: AtomicBool,
    /// The next chunk to take.
    next: AtomicUsize,
    /// Per chunk: swept.
    done: Box<[AtomicBool]>,
}

impl Split {
    fn new(cols: Range<usize>, segments: usize) -> Self {
        Self {
            cols,
            segments: Published::new(segments),
            closed: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            done: (0..segments.div_ceil(SPLIT_CHUNK))
                .map(|_| AtomicBool::new(false))
                .collect(),
        }
    }

    /// Chunks that can be taken: the full ones, and the last once closed.
    fn ready(&self) -> usize {
        let closed = self.closed.load(Ordering::Acquire);
        let len = self.segments.len();
        if closed {
            len.div_ceil(SPLIT_CHUNK)
        } else {
            len / SPLIT_CHUNK
        }
    }

    /// Takes the next chunk, if it is ready (and, if `free`, the one before it is swept, so
    /// that sweeping it waits for nothing).
    fn take(&self, free: bool) -> Option<usize> {
        let ready = self.ready();
        let next = self
            .next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |i| {
                (i < ready && !(free && i > 0 && !self.done[i - 1].load(Ordering::Acquire)))
                    .then_some(i + 1)
            });
        next.ok()
    }

    /// Every chunk taken, and no more to come.
    fn exhausted(&self) -> bool {
        self.closed.load(Ordering::Acquire) && self.next.load(Ordering::Acquire) >= self.ready()
    }

    /// Sweeps chunk `i`, taken by this thread, once chunk `i − 1` is.
    ///
    /// # Safety
    /// Chunk `i − 1` is swept; `cells` is the buffer of the step.
    unsafe fn run(&self, cells: Panels, fma: bool, i: usize) {
        let segments = self.segments.items();
        let chunk = &segments[i * SPLIT_CHUNK..((i + 1) * SPLIT_CHUNK).min(segments.len())];
        let cols = self.cols.clone();
        // SAFETY: these columns of the step's panels are swept by one chunk at a time, in order;
        // the nulling's thread reads them only once every chunk is swept.
        unsafe { apply(fma, cells, chunk, cols.clone(), cols.len()) };
        self.done[i].store(true, Ordering::Release);
    }
}

/// What the worker is given, in order.
enum Job {
    Rows(Batch),
    Columns(Arc<Flush>),
    /// Wakes it to help ([`Work::help`]).
    Help,
    Sweep(Arc<Split>),
}

/// The thread that takes the work the nulling does not need at once: kept row steps on the far
/// columns ([`Work::defer_rows_from`]), deferred column operations on the rows above the
/// nulling ([`Work::flush`], [`Work::help`]), and part of each split row step ([`Split`]).
struct Worker {
    jobs: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
}

/// The working matrix (module doc).
pub(super) struct Work {
    n: usize,
    /// Panels of four rows; `data[(p·stride(n) + c)·8 + lane]` real, `+ 4` imaginary.
    data: Lines,
    rho: Vec<C>,
    alpha: Vec<C>,
    /// The deferred column operations.
    ledger: Arc<Ledger>,
    /// The list is flushed when it holds this many.
    capacity: usize,
    /// The worker helps with the column operations of the step reading up to this row
    /// ([`Work::help`]).
    help_row: Option<usize>,
    /// The CPU has AVX2 and FMA.
    fma: bool,
    /// Column operations come in ascending chains, `(k, k+1)` then `(k+1, k+2)` (Reck), not
    /// descending ones (Clements).
    ascending: bool,
    /// Row operations on the columns `far ..` are deferred ([`Work::defer_rows_from`]).
    far: usize,
    /// The segments of the row steps deferred there since the last batch, in order, then
    /// those of the row step being made ([`Work::null_left_run`]).
    kept: Vec<Segment>,
    /// Whether a second thread takes part of the work ([`Worker`]).
    pipelined: bool,
    worker: Option<Worker>,
    /// The last batch's progress.
    progress: Option<Arc<AtomicUsize>>,
    /// The first row read so far (nullings move up the matrix).
    top: usize,
    /// The flushes given to the worker and maybe not finished, in order; they hold no group
    /// from `owed` on.
    flushes: Vec<Arc<Flush>>,
    owed: usize,
}

impl Work {
    /// A copy of the square matrix `u`.
    pub(super) fn new(u: &CMatrix) -> Self {
        let n = u.rows;
        let panels = n.div_ceil(4);
        Self {
            n,
            data: Lines::panels_of(u),
            rho: vec![C::new(1.0, 0.0); n],
            alpha: vec![C::new(1.0, 0.0); n],
            // Enough operations to batch many passes while the list stays in the L2 cache.
            ledger: Arc::new(Ledger::new(8192.max(2 * n), panels)),
            capacity: 8192.max(2 * n),
            help_row: None,
            fma: Simd::detect().fma(),
            ascending: false,
            far: n,
            kept: Vec::new(),
            pipelined: n >= PIPELINE && rayon::current_num_threads() > 1,
            worker: None,
            progress: None,
            top: n,
            flushes: Vec::new(),
            owed: 0,
        }
    }

    /// The same, its column operations to come in ascending chains (Reck's order).
    pub(super) fn ascending(mut self) -> Self {
        self.ascending = true;
        self
    }

    /// The same, handing work to a second thread (`true`) or not, whatever its size and the
    /// threads of the rayon pool (to test both).
    #[cfg(test)]
    pub(super) fn pipelined(mut self, on: bool) -> Self {
        self.pipelined = on;
        self
    }

    /// The panels, through a pointer (no reference to the buffer is made).
    fn panels(&mut self) -> Panels {
        Panels {
            base: self.data.0.as_mut_ptr().cast(),
            stride: stride(self.n),
            count: self.ledger.applied.len(),
        }
    }

    /// The same, flushing its deferred column operations every `ops` of them (to test flushes
    /// often).
    #[cfg(test)]
    pub(super) fn capacity(mut self, ops: usize) -> Self {
        self.capacity = ops.clamp(1, self.ledger.ops.slots.len());
        self
    }

    /// The same, updated without AVX2/FMA (to test that path where the CPU has them).
    #[cfg(test)]
    pub(super) fn portable(mut self) -> Self {
        self.fma = false;
        self
    }

    fn index(&self, r: usize, c: usize) -> usize {
        ((r / 4) * stride(self.n) + c) * 8 + r % 4
    }

    /// The stored element `S[r][c]` (row `r` must be up to date).
    fn stored(&self, r: usize, c: usize) -> C {
        let i = self.index(r, c);
        assert!(i + 4 < self.data.0.len() * 8);
        let base: *const f64 = self.data.0.as_ptr().cast();
        // SAFETY: within the buffer (checked); element reads through a pointer, no reference to
        // the buffer, so the worker may write other columns meanwhile (it never writes this
        // one: row `r` is read here only in columns before the deferral bound).
        unsafe { C::new(*base.add(i), *base.add(i + 4)) }
    }

    /// Sets the stored `S[r][c]`.
    fn set(&mut self, r: usize, c: usize, v: C) {
        let i = self.index(r, c);
        assert!(i + 4 < self.data.0.len() * 8);
        let base: *mut f64 = self.data.0.as_mut_ptr().cast();
        // SAFETY: as in `stored`.
        unsafe {
            *base.add(i) = v.re;
            *base.add(i + 4) = v.im;
        }
    }

    /// Brings the group of [`GROUP`] panels holding row `r` up to date (waiting first for the
    /// worker, if it holds the group: [`Work::flush`]).
    fn touch(&mut self, r: usize) {
        let g = r / 4 / GROUP;
        if g < self.owed {
            self.await_group(g);
        }
        let helping = self.help_row.is_some();
        if helping {
            // Published before the lock is taken: the worker checks it once it holds a lock.
            if self.ledger.front.load(Ordering::Relaxed) != g {
                self.ledger.front.store(g, Ordering::SeqCst);
            }
            while !self.ledger.try_lock(g) {
                self.check_worker();
            }
        }
        let cells = self.panels();
        let ledger = &self.ledger;
        // SAFETY: the columns before the deferral bound, which the worker's row steps never
        // touch (and column operations only reach columns before it: `null_right` settles
        // otherwise), of a group the worker does not hold (not a flush's: awaited above; and
        // locked if the worker helps, which it then leaves alone while this thread reads it).
        unsafe { ledger.catch_up(cells, g, self.far, self.fma, self.ascending) };
        if helping {
            ledger.unlock(g);
        }
    }

    /// Nulls `W[r][k]` (to rounding) with the inverse of an MZI on columns `(k, k+1)` applied
    /// to rows `0 ..= r` (deferred); returns the MZI.
    pub(super) fn null_right(&mut self, r: usize, k: usize) -> Nulling {
        if self.ledger.ops.len() == self.capacity {
            self.flush(self.pipelined);
        }
        if k + 1 >= self.far {
            self.settle_rows();
        }
        self.top = self.top.min(r);
        self.touch(r);
        let (a, b) = (self.alpha[k], self.alpha[k + 1]);
        let z = null_from_right(self.stored(r, k) * a, self.stored(r, k + 1) * b);
        // W·T† = ρ·S·diag(α)·P†·R·g*: the stored columns take ψ = α_k e^{−iφ}/α_{k+1} and R;
        // both column phases become g*·α_{k+1}.
        let psi = a * z.e.conj() / b;
        let rot = Rotation::new(psi, z.s, z.c);
        // SAFETY: this is the nulling's thread.
        unsafe { self.ledger.ops.push(ColumnOp { k, last: r, rot }) };
        self.alpha[k] = z.g().conj() * b;
        self.alpha[k + 1] = self.alpha[k];
        // Row r's group takes the operation with the next touch (the next nulling reads it
        // there); the nulled element then holds rounding, ~1e-16, which is never read again.
        z
    }

    /// One odd step of Clements: nulls `W[k+g+1][c+g]` from the left, g = 0 … count − 1 in
    /// order, each with an MZI on rows `(k+g, k+g+1)` applied at once to columns `c+g ..` (the
    /// columns before are zero in both rows); appends the MZIs (with their upper row) to `out`.
    ///
    /// The MZIs whose rows lie in one panel, and the one from its last row into the next panel,
    /// form a segment that goes through memory once: each is chosen at its column after the
    /// earlier ones reached it, then [`sweep`] applies all of them, column by column, to the
    /// rest of the row.
    pub(super) fn null_left_run(
        &mut self,
        k: usize,
        c: usize,
        count: usize,
        out: &mut Vec<(usize, Nulling)>,
    ) {
        let n = self.n;
        // Every column a nulling of this step reads lies before `near`.
        let near = (c + count).min(n);
        if near > self.far {
            self.settle_rows();
        }
        let far = self.far;
        // This step's segments follow those kept.
        let first = self.kept.len();
        self.top = self.top.min(k);
        // With a second thread, the segments' sweeps over the last columns the step reads may go
        // to it while the nulling chooses the next ones (see `Split`).
        let mut split = (self.pipelined && near - c >= SPLIT_FROM).then(|| {
            // Every column operation due on these rows first (the worker will sweep them).
            for g in k / 4 / GROUP..=(k + count).min(n - 1) / 4 / GROUP {
                self.touch(4 * GROUP * g);
            }
            let split = Arc::new(Split::new(near - (near - c) / SPLIT_PART..near, count + 1));
            self.give(Job::Sweep(split.clone()));
            split
        });
        let mut g = 0;
        while g < count {
            let (row, col0) = (k + g, c + g);
            let (p, l0) = (row / 4, row % 4);
            let len = (count - g).min(4 - l0);
            if split.as_ref().is_some_and(|s| col0 + len > s.cols.start) {
                // This segment reads the split columns: every segment before must be swept.
                self.end_split(split.take());
            }
            self.touch(4 * p);
            if l0 + len == 4 {
                self.touch(4 * p + 4);
            }
            let mut rots = [Rotation::IDENTITY; 4];
            for col in col0..(col0 + len).min(n) {
                for (h, rot) in rots.iter_mut().enumerate().take(col + 1 - col0) {
                    let (x, y) = (row + h, row + h + 1);
                    if col0 + h == col {
                        let (a, b) = (self.rho[x], self.rho[y]);
                        let z = null_from_left(a * self.stored(x, col), b * self.stored(y, col));
                        // T·W = g·R·P·diag(ρ)·S·…: the stored rows take ψ = e^{iφ}ρ_x/ρ_y and
                        // R; both row phases become g·ρ_y.
                        *rot = Rotation::new(z.e * a / b, z.s, z.c);
                        self.rho[x] = z.g() * b;
                        self.rho[y] = self.rho[x];
                        out.push((x, z));
                    }
                    let (u, v) = (self.stored(x, col), self.stored(y, col));
                    let [ur, ui, vr, vi] = rot.scalar::<false, false>(u.re, u.im, v.re, v.im);
                    self.set(x, col, C::new(ur, ui));
                    // The nulled element holds rounding, ~1e-16, never read again: zero.
                    let v = if col0 + h == col {
                        C::new(0.0, 0.0)
                    } else {
                        C::new(vr, vi)
                    };
                    self.set(y, col, v);
                }
            }
            // The columns a later segment of this step reads, now; the rest after the last.
            let end = split.as_ref().map_or(near, |s| s.cols.start);
            let segment = Segment { p, l0, len, rots };
            // SAFETY: columns before the deferral bound, and before those the worker sweeps.
            unsafe { sweep_segment(self.fma, self.panels(), &segment, col0 + len..end) };
            self.kept.push(segment);
            if let Some(s) = &split {
                // SAFETY: this is the nulling's thread; a step has at most `count` segments.
                unsafe { s.segments.push(segment) };
            }
            g += len;
        }
        self.end_split(split);
        // The columns up to the deferral bound now; the step is kept for the rest.
        let cells = self.panels();
        // SAFETY: columns `near .. far`, before the deferral bound.
        unsafe { apply(self.fma, cells, &self.kept[first..], near..far, far) };
        if far == n {
            self.kept.truncate(first);
        }
    }

    /// Closes the split's list, sweeps the chunks the worker has not taken, and waits for
    /// those it has.
    fn end_split(&mut self, split: Option<Arc<Split>>) {
        let Some(split) = split else { return };
        split.closed.store(true, Ordering::Release);
        let cells = self.panels();
        while let Some(i) = split.take(false) {
            if i > 0 {
                self.await_worker(|| split.done[i - 1].load(Ordering::Acquire));
            }
            // SAFETY: chunk `i − 1` is swept.
            unsafe { split.run(cells, self.fma, i) };
        }
        let chunks = split.ready();
        self.await_worker(|| (0..chunks).all(|i| split.done[i].load(Ordering::Acquire)));
    }

    /// Starts deferring row steps on the columns `col ..` (which no nulling of the coming steps
    /// may read), and applies the steps kept since the last call where they were kept: with a
    /// second thread, it takes the columns from `col` and this thread those before; alone, this
    /// thread applies them all at once ([`Work::settle_rows`]: a batch of steps turns each row
    /// into a line once, [`apply_avx2`]). Nothing is deferred below [`PIPELINE`] unless
    /// pipelined.
    pub(super) fn defer_rows_from(&mut self, col: usize) {
        let (n, far, fma) = (self.n, self.far, self.fma);
        let col = col.min(n);
        if !self.pipelined {
            if n >= PIPELINE {
                self.settle_rows();
                self.far = col;
            }
            return;
        }
        if far < n && !self.kept.is_empty() {
            // The last batch must be past `col` before these steps follow it below `col`.
            if let Some(progress) = self.progress.clone() {
                self.await_worker(|| progress.load(Ordering::Acquire) >= col);
            }
            let cells = self.panels();
            // SAFETY: columns `far .. col`, which the worker has left (it only moves right).
            unsafe { apply(fma, cells, &self.kept, far..col, BLOCK) };
            let progress = Arc::new(AtomicUsize::new(col));
            // The next batch will be about as long (steps grow slowly).
            let room = self.kept.len() + self.kept.len() / 4;
            let batch = Batch {
                segments: std::mem::replace(&mut self.kept, Vec::with_capacity(room)),
                from: col,
                progress: progress.clone(),
            };
            self.progress = Some(progress);
            self.give(Job::Rows(batch));
        }
        self.kept.clear();
        self.far = col;
    }

    /// Has the worker help (`Some(top)`, before a step of Clements' column operations that
    /// reads rows from `top` on) or stop helping (`None`, after it; waits until the worker is
    /// out of the list and the panels). While it helps, the worker brings the groups of panels
    /// above the nulling, from `top`'s on, up to date with the operations made so far, while
    /// the nulling makes more; the nulling's [`Work::touch`] then has only the latest to do.
    /// Nothing unless pipelined.
    pub(super) fn help(&mut self, top: Option<usize>) {
        if !self.pipelined {
            return;
        }
        let ledger = self.ledger.clone();
        match top {
            None => {
                if self.help_row.take().is_some() {
                    ledger.help_from.store(NONE, Ordering::SeqCst);
                    self.await_worker(|| !ledger.busy.load(Ordering::SeqCst));
                    ledger.front.store(NONE, Ordering::SeqCst);
                }
            }
            Some(row) => {
                self.help(None);
                self.help_row = Some(row);
                // Not the groups a flush may hold.
                let from = (row / 4 / GROUP).max(self.owed);
                ledger.help_cols.store(self.far, Ordering::Release);
                ledger.help_from.store(from, Ordering::SeqCst);
                self.give(Job::Help);
            }
        }
    }

    /// Hands `job` to the worker thread (started on first use).
    fn give(&mut self, job: Job) {
        let (cells, fma, ascending, n) = (self.panels(), self.fma, self.ascending, self.n);
        let ledger = &self.ledger;
        let worker = self.worker.get_or_insert_with(|| {
            let ledger = ledger.clone();
            let (jobs, inbox) = mpsc::channel::<Job>();
            let thread =
                std::thread::spawn(move || serve(inbox, cells, fma, ascending, n, &ledger));
            Worker { jobs, thread }
        });
        worker
            .jobs
            .send(job)
            .expect("the worker runs until the matrix is finished");
    }

    /// Waits until `done` (which the worker's progress makes true); a panic of the worker is
    /// passed on, never waited for.
    fn await_worker(&mut self, done: impl Fn() -> bool) {
        while !done() {
            self.check_worker();
        }
    }

    /// Passes on a panic of the worker (which has then stopped short); else yields.
    fn check_worker(&mut self) {
        if self.worker.as_ref().is_none_or(|w| w.thread.is_finished()) {
            self.join_worker();
            unreachable!("the worker ends only when its jobs are done");
        }
        std::thread::yield_now();
    }

    /// Brings group `g` up to date with the flushes given to the worker (it may be in them if
    /// `g < owed`): in each, in order, does the group here if the worker has not taken it yet
    /// (with any the worker would take before it), or waits for the worker to finish it.
    fn await_group(&mut self, g: usize) {
        let cells = self.panels();
        for flush in self.flushes.clone() {
            if g >= flush.groups() {
                continue;
            }
            while let Some(h) = flush.take_from(g) {
                // SAFETY: the earlier flushes are done with every group from `g` on (awaited
                // below, in order).
                unsafe { flush.run(cells, h) };
            }
            self.await_worker(|| (g..flush.groups()).all(|h| flush.is_done(h)));
        }
        self.flushes.retain(|f| !f.is_finished());
        self.owed = self.flushes.iter().map(|f| f.groups()).max().unwrap_or(0);
    }

    /// Waits for the worker to finish, then applies the kept row steps to the columns `far ..`:
    /// afterwards no row operation is deferred.
    fn settle_rows(&mut self) {
        let help = self.help_row;
        self.help(None);
        self.join_worker();
        let (fma, far, n) = (self.fma, self.far, self.n);
        let cells = self.panels();
        // SAFETY: no other thread runs.
        unsafe { apply(fma, cells, &self.kept, far..n, BLOCK) };
        self.kept.clear();
        self.far = n;
        self.help(help);
    }

    /// Ends the worker (once its jobs are done) and passes on a panic of it.
    fn join_worker(&mut self) {
        if let Err(panic) = self.end_worker() {
            std::panic::resume_unwind(panic);
        }
        self.progress = None;
        self.flushes.clear();
        self.owed = 0;
    }

    /// Closes the worker's inbox and waits for it to finish what it holds.
    fn end_worker(&mut self) -> std::thread::Result<()> {
        match self.worker.take() {
            Some(worker) => {
                // Out of help, with nothing more to come, it returns once its jobs are done.
                self.ledger.help_from.store(NONE, Ordering::SeqCst);
                drop(worker.jobs);
                worker.thread.join()
            }
            None => Ok(()),
        }
    }

    /// Brings every row up to date and empties the list. If `hand`, the groups of panels
    /// wholly above the first row read so far (nullings move up the matrix, about one row per
    /// step) go to the worker thread, which brings them up to date from the last one up while
    /// this thread goes on; when this thread reads one of them again, it does the group itself
    /// if the worker has not begun it (else waits for it).
    fn flush(&mut self, hand: bool) {
        // The list is emptied below, so the worker stops helping meanwhile.
        let help = self.help_row;
        self.help(None);
        let groups = self.ledger.locks.len();
        let handed = match hand {
            true => (self.top / 4 / GROUP).min(groups),
            false => 0,
        };
        if handed > 0 {
            let panels = (handed * GROUP).min(self.ledger.applied.len());
            let flush = Arc::new(Flush {
                ops: self.ledger.ops.items().to_vec(),
                applied: (self.ledger.applied[..panels].iter())
                    .map(|a| a.load(Ordering::Relaxed))
                    .collect(),
                cols: self.far,
                fma: self.fma,
                ascending: self.ascending,
                next: AtomicUsize::new(handed),
                done: (0..handed).map(|_| AtomicBool::new(false)).collect(),
                finished: AtomicUsize::new(0),
            });
            self.flushes.push(flush.clone());
            self.owed = self.owed.max(handed);
            self.give(Job::Columns(flush));
        }
        for g in handed..groups {
            self.touch(4 * GROUP * g);
        }
        // SAFETY: the worker does not help (stopped above).
        unsafe { self.ledger.clear() };
        self.help(help);
    }

    /// Flushes and returns the largest deviation of the final matrix from a unit-modulus
    /// diagonal (the nulling is unitary, so a unitary input ends exactly so), and the diagonal
    /// of the true matrix.
    pub(super) fn finish(mut self) -> (f64, Vec<C>) {
        self.settle_rows();
        self.flush(false);
        let n = self.n;
        // Squared moduli off the diagonal (no square root per element).
        let mut off = 0.0f64;
        let mut diagonal = 0.0f64;
        for r in 0..n {
            for c in 0..n {
                let v = self.stored(r, c).norm_sqr();
                if r == c {
                    diagonal = diagonal.max((v.sqrt() - 1.0).abs());
                } else {
                    off = off.max(v);
                }
            }
        }
        let worst = diagonal.max(off.sqrt());
        let d = (0..n)
            .map(|i| self.rho[i] * self.stored(i, i) * self.alpha[i])
            .collect();
        (worst, d)
    }
}

impl Drop for Work {
    /// The worker writes into the buffer: it must end before the buffer is freed (also when a
    /// decomposition stops early).
    fn drop(&mut self) {
        // A panic of the worker is not raised again here (this may run while unwinding).
        let _ = self.end_worker();
    }
}

/// `f64`s in whole cache lines: eight per line, the first on a 64-byte boundary (so a cell of
/// a panel is one line, not two halves).
struct Lines(Vec<Line>);

/// One cache line: `repr(C)`, eight `f64`s and no padding (its size, 64, is its alignment), so
/// `n` lines are `8·n` contiguous `f64`s, which [`Work`] and [`Panels`] address through pointers.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f64; 8]);

impl Lines {
    /// The square matrix `u` in panels (module doc), zero beyond it, each line written once:
    /// from N = 512 the panels are filled in parallel on the rayon pool (their pages first
    /// touched there too).
    fn panels_of(u: &CMatrix) -> Self {
        use rayon::prelude::*;
        let n = u.rows;
        let (stride, lines) = (stride(n), n.div_ceil(4) * stride(n));
        let mut data = Vec::with_capacity(lines);
        let fill = |(p, panel): (usize, &mut [std::mem::MaybeUninit<Line>])| {
            // The panel's rows of `u` (none past its last).
            let rows = [0, 1, 2, 3].map(|l| {
                let r = (4 * p + l).min(n);
                &u.data[r * n..(r + usize::from(r < n)) * n]
            });
            for (c, cell) in panel.iter_mut().enumerate() {
                let mut line = [0.0; 8];
                for (l, row) in rows.iter().enumerate() {
                    if let Some(v) = row.get(c) {
                        (line[l], line[4 + l]) = (v.re, v.im);
                    }
                }
                cell.write(Line(line));
            }
        };
        let panels = &mut data.spare_capacity_mut()[..lines];
        match n >= PIPELINE {
            true => panels.par_chunks_mut(stride).enumerate().for_each(fill),
            false => panels.chunks_mut(stride).enumerate().for_each(fill),
        }
        // SAFETY: the chunks cover the first `lines` lines, every one written above.
        unsafe { data.set_len(lines) };
        Self(data)
    }
}

/// Cells per panel: `n`, or `n + 1` if `n` is even, so that the same column of successive
/// panels falls in different sets of the caches (`n·64` bytes apart would share them when `n`
/// is a power of two).
fn stride(n: usize) -> usize {
    n | 1
}

/// Matrices from this size on defer their far row steps, in batches, to a second thread when
/// there is one (measured: slower at N = 256 on one thread).
const PIPELINE: usize = 512;

/// Clements row steps reading this many columns or more are split between the threads
/// ([`Split`]).
const SPLIT_FROM: usize = 96;

/// Segments swept at a time over the split columns of a row step.
const SPLIT_CHUNK: usize = 8;

/// The split columns of a row step are the last `1/SPLIT_PART` of those it reads: the nulling
/// sweeps the first three quarters of each segment itself while the worker takes the rest
/// (measured against thirds, halves and sixths).
const SPLIT_PART: usize = 4;

/// Columns the deferred row steps sweep at a time (the worker publishes its progress per block,
/// and between blocks takes a split step's chunks: 32 measured faster than 64 on two threads).
const BLOCK: usize = 32;

/// Applies `segments` (row MZIs, in order) to the columns `cols` of the panels, `block` columns
/// at a time: every segment sweeps a block before the next block. Where the MZIs pass over
/// each row [`TURN_PASSES`] times or more (a batch of steps) and the CPU has AVX2 and FMA, the
/// rows are turned into lines instead ([`apply_avx2`]), eight columns at a time, and only a
/// block's last few columns are swept.
///
/// # Safety
/// No other thread, and no live reference, touches columns `cols` of the panels from the first
/// the segments reach to the last meanwhile (turned lines are written back whole; the steps of
/// a batch run down to the last row, so no panel between is left out).
unsafe fn apply(fma: bool, cells: Panels, segments: &[Segment], cols: Range<usize>, block: usize) {
    let (Some(p0), Some(end)) = (
        segments.iter().map(|s| s.p).min(),
        segments.iter().map(|s| 4 * s.p + s.l0 + s.len + 1).max(),
    ) else {
        return;
    };
    // The panels reached: the last one's lanes from the row after the last MZI's upper one.
    let panels = p0..=(end - 1) / 4;
    let passes = segments.iter().map(|s| s.len).sum::<usize>();
    let turned = fma && passes >= TURN_PASSES * (end - 4 * p0);
    let mut b0 = cols.start;
    while b0 < cols.end {
        let b1 = (b0 + block.max(1)).min(cols.end);
        // SAFETY: `fma` is only true where the CPU has AVX2 and FMA; the caller's columns.
        #[cfg(target_arch = "x86_64")]
        let done = match turned {
            true => SCRATCH.with_borrow_mut(|scratch| unsafe {
                apply_avx2(cells, segments, panels.clone(), b0..b1, scratch)
            }),
            false => 0,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = {
            let _ = (turned, &panels);
            0
        };
        if b0 + done < b1 {
            for s in segments {
                // SAFETY: the caller's columns.
                unsafe { sweep_segment(fma, cells, s, b0 + done..b1) };
            }
        }
        b0 = b1;
    }
}

/// Sweeps segment `s` over the columns `cols` of its panel and, if it crosses into it, the
/// next ([`sweep`]).
///
/// # Safety
/// No other thread, and no live reference, touches those columns of those panels meanwhile.
unsafe fn sweep_segment(fma: bool, cells: Panels, s: &Segment, cols: Range<usize>) {
    // SAFETY: panels `p` and `p + 1` are distinct; the caller's contract.
    let (top, bottom) = unsafe {
        let bottom = if s.l0 + s.len == 4 {
            cells.cells(s.p + 1, cols.clone())
        } else {
            &mut []
        };
        (cells.cells(s.p, cols.clone()), bottom)
    };
    sweep(fma, top, bottom, s.l0, &s.rots[..s.len], 0, cols.len());
}

#[cfg(target_arch = "x86_64")]
thread_local! {
    /// [`apply_avx2`]'s rows, kept from call to call.
    static SCRATCH: std::cell::RefCell<Vec<[__m256d; 4]>> = const {
        std::cell::RefCell::new(Vec::new())
    };
}

/// [`apply`] with AVX2 and FMA on the first columns of `cols`, eight at a time; returns how
/// many it did (a multiple of eight; the rest are the caller's). For each eight columns, every
/// row of the `panels` the segments reach is turned (4×4 transposes) into one line of `scratch` — the real
/// parts of columns 0–3 and 4–7, then the imaginary parts — the MZIs are applied in order as
/// arithmetic on two lines (the line a chain carries on held in registers: one load and one
/// store per MZI), and the lines are turned back. A step's MZIs run down a chain of rows, so a
/// row is turned twice per batch of steps rather than twice per step and panel, and no lane
/// crosses a register.
///
/// # Safety
/// As [`apply`]'s; and the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn apply_avx2(
    cells: Panels,
    segments: &[Segment],
    panels: std::ops::RangeInclusive<usize>,
    cols: Range<usize>,
    scratch: &mut Vec<[__m256d; 4]>,
) -> usize {
    let (p0, p1) = panels.into_inner();
    let width = cols.len() / 8 * 8;
    let zero = _mm256_set1_pd(0.0);
    // Every line is written before it is read: the scratch only grows.
    if scratch.len() < 4 * (p1 + 1 - p0) {
        scratch.resize(4 * (p1 + 1 - p0), [zero; 4]);
    }
    for c in (cols.start..cols.start + width).step_by(8) {
        for p in p0..=p1 {
            // SAFETY: the caller's columns of a panel between the first and last reached.
            let cell = unsafe { cells.cells(p, c..c + 8) }.as_ptr();
            // SAFETY: AVX2 is enabled; the loads stay within the 64 `f64`s of `cell`.
            let at = |o: usize| unsafe { _mm256_loadu_pd(cell.add(o)) };
            let ra = transpose4([0, 8, 16, 24].map(at));
            let ia = transpose4([4, 12, 20, 28].map(at));
            let rb = transpose4([32, 40, 48, 56].map(at));
            let ib = transpose4([36, 44, 52, 60].map(at));
            // The lines two blocks of eight on, maybe past the caller's columns or the panel:
            // a prefetch reads nothing and never faults.
            for line in 16..24 {
                _mm_prefetch::<_MM_HINT_T0>(cell.wrapping_add(8 * line).cast::<i8>());
            }
            for l in 0..4 {
                scratch[4 * (p - p0) + l] = [ra[l], rb[l], ia[l], ib[l]];
            }
        }
        let mut held = usize::MAX;
        let mut line = [zero; 4];
        for s in segments {
            for (h, r) in s.rots[..s.len].iter().enumerate() {
                let x = 4 * (s.p - p0) + s.l0 + h;
                if held != x {
                    if held != usize::MAX {
                        scratch[held] = line;
                    }
                    line = scratch[x];
                }
                let [yra, yrb, yia, yib] = scratch[x + 1];
                let [xra, xia, ya_r, ya_i] = r.pair::<_, false>(line[0], line[2], yra, yia);
                let [xrb, xib, yb_r, yb_i] = r.pair::<_, false>(line[1], line[3], yrb, yib);
                scratch[x] = [xra, xrb, xia, xib];
                (held, line) = (x + 1, [ya_r, yb_r, ya_i, yb_i]);
            }
        }
        if held != usize::MAX {
            scratch[held] = line;
        }
        for p in p0..=p1 {
            // SAFETY: as above.
            let cell = unsafe { cells.cells(p, c..c + 8) }.as_mut_ptr();
            let rows = &scratch[4 * (p - p0)..4 * (p - p0) + 4];
            let part = |i: usize| transpose4([0, 1, 2, 3].map(|l| rows[l][i]));
            for (i, offset) in [(0, 0), (2, 4), (1, 32), (3, 36)] {
                for (j, v) in part(i).into_iter().enumerate() {
                    // SAFETY: AVX2 is enabled; within the 64 `f64`s of `cell`.
                    unsafe { _mm256_storeu_pd(cell.add(offset + 8 * j), v) };
                }
            }
        }
    }
    width
}

/// Panels updated together.
const GROUP: usize = 4;

/// [`apply`] turns rows into lines ([`apply_avx2`]) where its MZIs pass over each row this many
/// times or more.
const TURN_PASSES: usize = 4;

/// The next job from `inbox`, spinning up to [`SPIN`] before it sleeps (waking a sleeping
/// thread takes tens of microseconds, as long as a step of the nulling); `None` once the inbox
/// is closed and empty.
fn next_job(inbox: &mpsc::Receiver<Job>) -> Option<Job> {
    let start = std::time::Instant::now();
    loop {
        match inbox.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if start.elapsed() > SPIN => return inbox.recv().ok(),
            Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
}

/// How long the worker waits for a job awake ([`next_job`]).
const SPIN: std::time::Duration = std::time::Duration::from_micros(500);

/// The worker thread's loop: takes jobs from `inbox` until it is closed and every job is
/// done. In order of urgency: the next chunk of a split row step, a pass of help with a column
/// step, a block of a batch of row steps, a group of a flush.
///
/// The jobs touch disjoint cells, and none touches cells the nulling's thread uses until
/// their progress says so: a split step the columns after those the nulling sweeps, in the
/// step's rows; help the groups above the nulling's, in columns before the deferral bound; a
/// batch of row steps the rows of earlier steps in columns from the bound then; a flush the
/// rows above those read before it in columns before the bound then (which only grows).
fn serve(
    inbox: mpsc::Receiver<Job>,
    cells: Panels,
    fma: bool,
    ascending: bool,
    n: usize,
    ledger: &Ledger,
) {
    let mut batches = std::collections::VecDeque::<(Batch, usize)>::new();
    let mut flushes = std::collections::VecDeque::<Arc<Flush>>::new();
    let mut splits = std::collections::VecDeque::<Arc<Split>>::new();
    // The nulling's thread has closed the inbox: it now waits for this one (having finished
    // every split step and flush group it took) or has panicked.
    let mut hung_up = false;
    loop {
        loop {
            let helping = ledger.help_from.load(Ordering::Relaxed) != NONE;
            let idle = batches.is_empty() && flushes.is_empty() && splits.is_empty();
            let job = if idle && !helping {
                match next_job(&inbox) {
                    Some(job) => job,
                    None => return,
                }
            } else {
                match inbox.try_recv() {
                    Ok(job) => job,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        hung_up = true;
                        break;
                    }
                }
            };
            match job {
                Job::Rows(batch) => {
                    let from = batch.from;
                    batches.push_back((batch, from));
                }
                Job::Columns(flush) => flushes.push_back(flush),
                Job::Help => {}
                Job::Sweep(split) => splits.push_back(split),
            }
        }
        // A split row step first: the nulling may wait for it.
        if let Some(split) = splits.front() {
            if let Some(i) = split.take(true) {
                // SAFETY: taken free: chunk `i − 1` is swept.
                unsafe { split.run(cells, fma, i) };
                continue;
            }
            if split.exhausted() || hung_up {
                splits.pop_front();
                continue;
            }
        }
        // A pass of help between blocks of the other jobs.
        ledger.help(cells, fma, ascending);
        if let Some((batch, b)) = batches.front_mut() {
            // One block of columns.
            let e = (*b + BLOCK).min(n);
            // SAFETY: the columns from `batch.from` belong to this thread until it publishes
            // that it has passed them.
            unsafe { apply(fma, cells, &batch.segments, *b..e, BLOCK) };
            batch.progress.store(e, Ordering::Release);
            *b = e;
            if e >= n {
                batches.pop_front();
            }
        } else if let Some(flush) = flushes.front() {
            match flush.take_from(0) {
                // SAFETY: the earlier flushes are finished (they left the queue so).
                Some(g) => unsafe { flush.run(cells, g) },
                // The nulling's thread may still be doing a group it took.
                None if flush.is_finished() || hung_up => drop(flushes.pop_front()),
                None => std::thread::yield_now(),
            }
        }
    }
}

/// Brings the consecutive panels `ps` (the first holding rows `first ..`), panel `q` having had
/// `applied[q]` of `ops`, to the end of the list: each panel first level with the one furthest
/// ahead, then the rest on all of them at once (their updates are independent chains, which
/// keeps the arithmetic units busy).
fn catch_up(
    fma: bool,
    ascending: bool,
    ps: &mut [&mut [f64]],
    applied: &mut [usize],
    ops: &[ColumnOp],
    first: usize,
) {
    let Some(&level) = applied.iter().max() else {
        return;
    };
    for (q, panel) in ps.iter_mut().enumerate() {
        let panel = std::slice::from_mut(panel);
        run(
            fma,
            ascending,
            panel,
            &ops[applied[q]..level],
            first + 4 * q,
        );
    }
    run(fma, ascending, ps, &ops[level..], first);
    applied.fill(ops.len());
}

/// Runs `ops` on the consecutive panels `ps` (their columns from 0), the first holding rows
/// `first ..` (a panel wholly below an operation's `last` row skips it); with fused
/// multiply-adds where `fma` says the CPU has them.
fn run(fma: bool, ascending: bool, ps: &mut [&mut [f64]], ops: &[ColumnOp], first: usize) {
    if ops.is_empty() {
        return;
    }
    // Each operation's `y` is the last one's `x` in a descending chain (Clements), its `x` the
    // last one's `y` in an ascending one (Reck): the arithmetic takes the chained line last.
    #[cfg(target_arch = "x86_64")]
    if fma {
        // SAFETY: `fma` is only true where the CPU has AVX2 and FMA (`Simd::detect`).
        unsafe {
            match ascending {
                true => run_avx2::<false>(ps, ops, first),
                false => run_avx2::<true>(ps, ops, first),
            }
        };
        return;
    }
    let _ = fma;
    match ascending {
        true => run_with::<false, false>(ps, ops, first),
        false => run_with::<false, true>(ps, ops, first),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_avx2<const Y_LAST: bool>(ps: &mut [&mut [f64]], ops: &[ColumnOp], first: usize) {
    run_with::<true, Y_LAST>(ps, ops, first);
}

#[inline(always)]
fn run_with<const FMA: bool, const Y_LAST: bool>(
    ps: &mut [&mut [f64]],
    ops: &[ColumnOp],
    first: usize,
) {
    let panels = ps.len();
    for op in ops {
        // The operation and its coefficients once, for every panel it reaches.
        let (k, rot) = (op.k, op.rot);
        let live = if op.last >= first {
            ((op.last - first) / 4 + 1).min(panels)
        } else {
            0
        };
        for panel in ps.iter_mut().take(live) {
            let cell: &mut [f64; 16] = (&mut panel[k * 8..k * 8 + 16])
                .try_into()
                .expect("two columns");
            rotate4::<FMA, Y_LAST>(cell, &rot);
        }
    }
}

/// Applies the MZIs of a segment (`rots[h]` on lanes `l0 + h`, `l0 + h + 1` of panel `p`, lane
/// 4 being lane 0 of panel `p + 1`) in order to columns `from .. n`: four columns at a time,
/// their cells turned into one four-column vector per lane, every MZI applied as four-column
/// arithmetic, and written back. With fused multiply-adds where `fma` says the CPU has them.
fn sweep(
    fma: bool,
    top: &mut [f64],
    bottom: &mut [f64],
    l0: usize,
    rots: &[Rotation],
    from: usize,
    to: usize,
) {
    macro_rules! dispatch {
        ($($l:literal $len:literal),*) => {
            match (l0, rots.len()) {
                $(($l, $len) => {
                    #[cfg(target_arch = "x86_64")]
                    if fma {
                        // SAFETY: `fma` is only true where the CPU has AVX2 and FMA.
                        unsafe { sweep_avx2::<$l, $len>(top, bottom, rots, from, to) };
                        return;
                    }
                    sweep_with::<false, $l, $len>(top, bottom, rots, from, to)
                })*
                _ => unreachable!("a segment stays within one panel and the next row"),
            }
        };
    }
    let _ = fma;
    dispatch!(0 1, 0 2, 0 3, 0 4, 1 1, 1 2, 1 3, 2 1, 2 2, 3 1);
}

/// [`sweep_with`] with AVX2 and FMA: whole blocks of four columns are turned with two 4×4
/// transposes (real and imaginary parts) into registers, the tail of fewer columns by the
/// portable code.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sweep_avx2<const L0: usize, const LEN: usize>(
    top: &mut [f64],
    bottom: &mut [f64],
    rots: &[Rotation],
    from: usize,
    to: usize,
) {
    let cross = L0 + LEN == 4;
    let full = from + (to - from.min(to)) / 4 * 4;
    {
        let rots: &[Rotation; LEN] = rots.try_into().expect("LEN rotations");
        for col in (from..full).step_by(4) {
            let cells: &mut [f64; 32] = (&mut top[col * 8..col * 8 + 32])
                .try_into()
                .expect("four cells");
            // SAFETY: AVX2 is enabled (see the function's attribute); loads and stores stay
            // within `cells` (four cells of eight) and `bottom` (indexed, bounds-checked).
            unsafe {
                let at = |j: usize| cells.as_ptr().add(j);
                let [r0, r1, r2, r3] =
                    transpose4([at(0), at(8), at(16), at(24)].map(|q| _mm256_loadu_pd(q)));
                let [i0, i1, i2, i3] =
                    transpose4([at(4), at(12), at(20), at(28)].map(|q| _mm256_loadu_pd(q)));
                // Lane 4: lane 0 of the next panel.
                let lane4 = |o: usize| -> __m256d {
                    if cross {
                        let b = |j: usize| bottom[(col + j) * 8 + o];
                        _mm256_loadu_pd([b(0), b(1), b(2), b(3)].as_ptr())
                    } else {
                        _mm256_set1_pd(0.0)
                    }
                };
                let mut re = [r0, r1, r2, r3, lane4(0)];
                let mut im = [i0, i1, i2, i3, lane4(4)];
                for (h, r) in rots.iter().enumerate() {
                    let (x, y) = (L0 + h, L0 + h + 1);
                    [re[x], im[x], re[y], im[y]] = r.pair::<_, false>(re[x], im[x], re[y], im[y]);
                }
                let out = cells.as_mut_ptr();
                for (j, v) in transpose4([re[0], re[1], re[2], re[3]])
                    .into_iter()
                    .enumerate()
                {
                    _mm256_storeu_pd(out.add(8 * j), v);
                }
                for (j, v) in transpose4([im[0], im[1], im[2], im[3]])
                    .into_iter()
                    .enumerate()
                {
                    _mm256_storeu_pd(out.add(8 * j + 4), v);
                }
                if cross {
                    let (mut a, mut b) = ([0.0; 4], [0.0; 4]);
                    _mm256_storeu_pd(a.as_mut_ptr(), re[4]);
                    _mm256_storeu_pd(b.as_mut_ptr(), im[4]);
                    for j in 0..4 {
                        bottom[(col + j) * 8] = a[j];
                        bottom[(col + j) * 8 + 4] = b[j];
                    }
                }
            }
        }
    }
    if full < to {
        sweep_with::<true, L0, LEN>(top, bottom, rots, full, to);
    }
}

/// The 4×4 transpose of four registers (rows ↔ lanes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose4(a: [__m256d; 4]) -> [__m256d; 4] {
    // SAFETY: only reached from functions compiled with AVX2 (see `Lanes for __m256d`).
    unsafe {
        let t0 = _mm256_unpacklo_pd(a[0], a[1]);
        let t1 = _mm256_unpackhi_pd(a[0], a[1]);
        let t2 = _mm256_unpacklo_pd(a[2], a[3]);
        let t3 = _mm256_unpackhi_pd(a[2], a[3]);
        [
            _mm256_permute2f128_pd::<0x20>(t0, t2),
            _mm256_permute2f128_pd::<0x20>(t1, t3),
            _mm256_permute2f128_pd::<0x31>(t0, t2),
            _mm256_permute2f128_pd::<0x31>(t1, t3),
        ]
    }
}

#[inline(always)]
fn sweep_with<const FMA: bool, const L0: usize, const LEN: usize>(
    top: &mut [f64],
    bottom: &mut [f64],
    rots: &[Rotation],
    from: usize,
    to: usize,
) {
    let cross = L0 + LEN == 4;
    let rots: &[Rotation; LEN] = rots.try_into().expect("LEN rotations");
    let mut col = from;
    while col < to {
        let w = (to - col).min(4);
        // Lane l of the four columns: re[l][j], im[l][j]; lane 4: lane 0 of the next panel.
        let (mut re, mut im) = ([[0.0; 4]; 5], [[0.0; 4]; 5]);
        for j in 0..w {
            let cell = &top[(col + j) * 8..(col + j) * 8 + 8];
            for l in L0..4 {
                re[l][j] = cell[l];
                im[l][j] = cell[4 + l];
            }
            if cross {
                re[4][j] = bottom[(col + j) * 8];
                im[4][j] = bottom[(col + j) * 8 + 4];
            }
        }
        for (h, r) in rots.iter().enumerate() {
            let (x, y) = (L0 + h, L0 + h + 1);
            for j in 0..4 {
                [re[x][j], im[x][j], re[y][j], im[y][j]] =
                    r.scalar::<FMA, false>(re[x][j], im[x][j], re[y][j], im[y][j]);
            }
        }
        for j in 0..w {
            let cell = &mut top[(col + j) * 8..(col + j) * 8 + 8];
            for l in L0..4 {
                cell[l] = re[l][j];
                cell[4 + l] = im[l][j];
            }
            if cross {
                bottom[(col + j) * 8] = re[4][j];
                bottom[(col + j) * 8 + 4] = im[4][j];
            }
        }
        col += w;
    }
}

/// One column operation on the two columns of a panel: `cell` = real parts of column k (four
/// rows), imaginary parts, then the same for column k+1.
#[inline(always)]
fn rotate4<const FMA: bool, const Y_LAST: bool>(cell: &mut [f64; 16], rot: &Rotation) {
    let mut out = [0.0; 16];
    for l in 0..4 {
        [out[l], out[4 + l], out[8 + l], out[12 + l]] =
            rot.scalar::<FMA, Y_LAST>(cell[l], cell[4 + l], cell[8 + l], cell[12 + l]);
    }
    *cell = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_whole_cache_lines_and_panels_fall_in_different_sets() {
        for n in [1, 4, 5, 64, 1024] {
            let w = Work::new(&CMatrix::identity(n));
            assert_eq!(w.data.0.as_ptr() as usize % 64, 0, "{n}");
            assert_eq!(w.data.0.len() * 8, n.div_ceil(4) * stride(n) * 8);
            // Every cell starts a line; the same column of the next panel is an odd number of
            // lines further, never a multiple of the 4 KiB page.
            assert_eq!(w.index(0, n - 1) % 8, 0);
            if n > 4 {
                let lines = (w.index(4, 0) - w.index(0, 0)) / 8;
                assert!(
                    lines % 2 == 1 && !(lines * 64).is_multiple_of(4096),
                    "{n}: {lines}"
                );
            }
            assert_eq!(w.stored(n - 1, n - 1), C::new(1.0, 0.0));
        }
    }

    /// A batch of row steps applied with rows turned into lines ([`apply_avx2`], with the tail
    /// of fewer than eight columns swept) gives the same bits as each segment swept in turn.
    #[test]
    fn a_batch_of_row_steps_turned_into_lines_matches_the_segments_swept_in_turn() {
        if !Simd::detect().fma() {
            eprintln!("note: no AVX2/FMA here; the lines are only turned with them");
            return;
        }
        let (panels, n) = (6, 45);
        let rows = 4 * panels;
        // Eight steps, each a chain of MZIs from its first row down to the last, cut into
        // segments at panel boundaries as a Clements row step is.
        let mut segments = Vec::new();
        for step in 0..8 {
            let mut x = 1 + 2 * step % 7;
            while x + 1 < rows {
                let (p, l0) = (x / 4, x % 4);
                let len = (rows - 1 - x).min(4 - l0);
                let mut rots = [Rotation::IDENTITY; 4];
                for (h, r) in rots.iter_mut().enumerate().take(len) {
                    let a = 0.3 + 0.7 * (x + h + 11 * step) as f64;
                    *r = Rotation::new(C::new(a.cos(), a.sin()), (0.5 * a).sin(), (0.5 * a).cos());
                }
                segments.push(Segment { p, l0, len, rots });
                x += len;
            }
        }
        let rotations: usize = segments.iter().map(|s| s.len).sum();
        assert!(rotations >= TURN_PASSES * rows, "the batch is turned");
        let start: Vec<f64> = (0..panels * n * 8)
            .map(|i| (0.37 * i as f64).sin())
            .collect();
        let (mut turned, mut swept) = (start.clone(), start.clone());
        let cols = 3..n - 2;
        let panels_of = |buf: &mut Vec<f64>| Panels {
            base: buf.as_mut_ptr(),
            stride: n,
            count: panels,
        };
        // SAFETY: one thread; the buffers hold every panel.
        unsafe { apply(true, panels_of(&mut turned), &segments, cols.clone(), 64) };
        let cells = panels_of(&mut swept);
        for s in &segments {
            // SAFETY: one thread; the buffer holds every panel.
            unsafe { sweep_segment(true, cells, s, cols.clone()) };
        }
        assert!(turned.iter().zip(&start).any(|(a, b)| a != b));
        assert!(
            turned
                .iter()
                .zip(&swept)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the same bits"
        );
    }
}
