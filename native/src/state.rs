//! The per-account state of `stream_detector/state.py`, natively: the same fields and the same
//! `apply` arithmetic, so that folding one event in costs a fraction of a microsecond. Only the
//! hot write path lives here; the windows, export and restore are the Python mixin's, shared with
//! the pure-Python reference, and the two are differentially tested.

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

const HOUR: f64 = 3600.0;
/// Event flags (`features.N_FLAGS`), the 24 hourly slots, the count of prompts whose head or
/// tail template fingerprint recurred, and the ring of the last prompts' fingerprints: the
/// layout of `state.py`, checked at import there.
pub const N_FLAGS: usize = 16;
pub const RING: usize = N_FLAGS;
pub const REPEATS: usize = RING + 24;
pub const RECENT: usize = REPEATS + 1;
pub const RECENT_SLOTS: usize = 16;
pub const SIZE: usize = RECENT + RECENT_SLOTS;
/// Index of the `HAS_PROMPT` flag's count (`features.HAS_PROMPT` is bit 12).
const PROMPTS: usize = 12;

const MINUTE: f64 = 60.0;
/// Minutes the minute mask covers (`timing.MASK_MINUTES`).
const MASK_MINUTES: i64 = 64;

/// `int(ts // width)` exactly as CPython computes float floor division (fmod first).
fn slot_of(ts: f64, width: f64) -> i64 {
    let rem = ts % width;
    let mut div = (ts - rem) / width;
    if rem < 0.0 {
        div -= 1.0;
    }
    let floor = div.floor();
    (if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }) as i64
}

fn hour_of(ts: f64) -> i64 {
    slot_of(ts, HOUR)
}

fn bump(slot: &mut u32) -> PyResult<()> {
    *slot = slot
        .checked_add(1)
        .ok_or_else(|| PyOverflowError::new_err("account counter overflow"))?;
    Ok(())
}

/// Everything the detector remembers about one account (see `state.AccountState`).
#[pyclass(subclass, module = "stream_detector._native")]
pub struct AccountStateCore {
    counts: [u32; SIZE],
    #[pyo3(get, set)]
    created_ts: Option<f64>,
    #[pyo3(get, set)]
    first_ts: f64,
    #[pyo3(get, set)]
    last_ts: f64,
    #[pyo3(get, set)]
    gap_m2: f64,
    #[pyo3(get, set)]
    gap_mean: f64,
    #[pyo3(get, set)]
    gap_n: u64,
    #[pyo3(get, set)]
    has_org: bool,
    #[pyo3(get, set)]
    hod_mask: u32,
    #[pyo3(get, set)]
    minute_mask: u64,
    #[pyo3(get, set)]
    mask_minute: i64,
    #[pyo3(get, set)]
    in_tokens: u64,
    #[pyo3(get, set)]
    out_tokens: u64,
    #[pyo3(get, set)]
    n: u64,
    #[pyo3(get, set)]
    ring_hour: i64,
    #[pyo3(get, set)]
    scored_hour: i64,
    #[pyo3(get, set)]
    scored_n: u64,
    #[pyo3(get, set)]
    policy: PyObject,
}

#[pymethods]
impl AccountStateCore {
    #[new]
    fn new(py: Python<'_>, ts: f64) -> Self {
        Self {
            counts: [0; SIZE],
            created_ts: None,
            first_ts: ts,
            last_ts: ts,
            gap_m2: 0.0,
            gap_mean: 0.0,
            gap_n: 0,
            has_org: false,
            hod_mask: 0,
            minute_mask: 0,
            mask_minute: slot_of(ts, MINUTE),
            in_tokens: 0,
            out_tokens: 0,
            n: 0,
            ring_hour: hour_of(ts),
            scored_hour: -1,
            scored_n: 0,
            policy: PyList::empty(py).into_any().unbind(),
        }
    }

    /// The counters, as a list (read at scoring time, not per event).
    #[getter]
    fn counts(&self) -> Vec<u32> {
        self.counts.to_vec()
    }

    /// The event-flag counters only (what an early look at an account needs).
    #[getter]
    fn flag_counts(&self) -> Vec<u32> {
        self.counts[..N_FLAGS].to_vec()
    }

    #[setter]
    fn set_counts(&mut self, values: Vec<u32>) -> PyResult<()> {
        self.counts = values
            .try_into()
            .map_err(|_| PyValueError::new_err(format!("counts must have {SIZE} values")))?;
        Ok(())
    }

    /// Fold one on-time event in (`state.AccountState.apply`, operation for operation).
    fn apply(&mut self, f: &Bound<'_, PyAny>, flags: u32) -> PyResult<()> {
        let py = f.py();
        let ts: f64 = f.getattr(intern!(py, "ts"))?.extract()?;
        self.n += 1;
        self.in_tokens += f.getattr(intern!(py, "input_tokens"))?.extract::<u64>()?;
        self.out_tokens += f.getattr(intern!(py, "output_tokens"))?.extract::<u64>()?;
        let counts = &mut self.counts;
        let mut bits = flags;
        while bits != 0 {
            let index = bits.trailing_zeros() as usize;
            bump(
                counts
                    .get_mut(index)
                    .ok_or_else(|| PyValueError::new_err("bad flags"))?,
            )?;
            bits &= bits - 1;
        }
        let created: Option<f64> = f.getattr(intern!(py, "created_ts"))?.extract()?;
        if created.is_some() {
            self.created_ts = created;
        }
        if f.getattr(intern!(py, "org"))?.is_truthy()? {
            self.has_org = true;
        }
        let hour = hour_of(ts);
        if hour > self.ring_hour {
            for h in (self.ring_hour + 1).max(hour - 23)..=hour {
                counts[RING + h.rem_euclid(24) as usize] = 0;
            }
            self.ring_hour = hour;
        }
        let slot = hour.rem_euclid(24) as usize;
        if self.ring_hour - hour < 24 {
            bump(&mut counts[RING + slot])?;
        }
        self.hod_mask |= 1 << slot;
        // Minutes with calls (`timing`): bit k is minute `mask_minute - k`.
        let minute = slot_of(ts, MINUTE);
        if minute > self.mask_minute {
            let ahead = minute - self.mask_minute;
            self.minute_mask = if ahead < MASK_MINUTES {
                self.minute_mask << ahead
            } else {
                0
            };
            self.mask_minute = minute;
        }
        let back = self.mask_minute - minute;
        if back < MASK_MINUTES {
            self.minute_mask |= 1 << back;
        }
        let gap = ts - self.last_ts;
        if gap >= 0.0 {
            if self.n > 1 {
                // Welford on log10 gaps: machines tick evenly, people come in bursts.
                let x = (gap + 0.01).log10();
                self.gap_n += 1;
                let delta = x - self.gap_mean;
                self.gap_mean += delta / self.gap_n as f64;
                self.gap_m2 += delta * (x - self.gap_mean);
            }
            self.last_ts = ts;
        }
        let head_fp: u32 = f.getattr(intern!(py, "head_fp"))?.extract()?;
        if head_fp != 0 {
            // A template recurs within the last few prompts (a question's own never does).
            let tail_fp: u32 = f.getattr(intern!(py, "tail_fp"))?.extract()?;
            let recent = &counts[RECENT..SIZE];
            if recent.contains(&head_fp) || recent.contains(&tail_fp) {
                bump(&mut counts[REPEATS])?;
            }
            let prompts = counts[PROMPTS] as usize;
            let at = RECENT + (2 * prompts + RECENT_SLOTS - 2) % RECENT_SLOTS;
            counts[at] = head_fp;
            counts[at + 1] = tail_fp;
        }
        Ok(())
    }
}
