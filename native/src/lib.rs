//! Compiled fast path of `stream_detector.features.parse_features`: one raw event line in,
//! the `EventFeatures` that `derive(parse_event(line))` gives out.
//!
//! Python stays the reference. Whenever this code is not certain to agree with it (a contract
//! violation, a duplicate key, a number outside the easy range, an unusual time or IP form...)
//! it returns None and the caller runs the Python path, which also names the rejection.

mod state;
mod timing;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyString, PyType};
use pyo3::{ffi, intern};

/// Integers are taken natively only up to 2**53, where int/float comparisons stay exact.
const MAX_EXACT_INT: u64 = 1 << 53;
/// Nesting of unknown fields deeper than this goes to Python.
const MAX_DEPTH: u32 = 64;

// ---------------------------------------------------------------------------------------------
// JSON: a strict reader of exactly what orjson accepts (or less)

/// A decoded JSON value; arrays and objects only occur in ignored fields, so are not kept.
enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Nested,
}

/// Index of the first `"`, `\\` or control character, eight bytes at a time.
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let x = u64::from_ne_bytes(chunk.try_into().ok()?);
        let zero_in = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
        let hits = zero_in(x ^ (ONES * u64::from(b'"')))
            | zero_in(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH);
        if hits != 0 {
            break;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &str, value: Value<'a>) -> Option<Value<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word.as_bytes()).then(|| {
            self.at = end;
            value
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.at..self.at + 4)?;
        self.at += 4;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    }

    /// A string; borrowed from the input when it has no escapes. Lone surrogates, raw control
    /// characters and unknown escapes are refused (orjson rejects them too).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.at;
        self.at += special_byte(&self.bytes[start..])?;
        if self.bytes[self.at] == b'"' {
            self.at += 1;
            return Some(Cow::Borrowed(&self.text[start..self.at - 1]));
        }
        if self.bytes[self.at] < 0x20 {
            return None;
        }
        let mut out = String::with_capacity(self.bytes.len() - start); // decoded is never longer
        out.push_str(&self.text[start..self.at]);
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let escape = *self.bytes.get(self.at + 1)?;
                    self.at += 2;
                    out.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let high = self.hex4()?;
                            if (0xD800..0xDC00).contains(&high) {
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                            } else {
                                char::from_u32(high)? // None for a lone low surrogate
                            }
                        }
                        _ => return None,
                    });
                }
                0..=0x1f => return None,
                _ => {
                    let run = self.at;
                    self.at += special_byte(&self.bytes[run..])?;
                    out.push_str(&self.text[run..self.at]);
                }
            }
        }
    }

    /// A number in the easy range: integers within ±2**53, floats of at most 32 characters
    /// that parse (correctly rounded, as orjson does) to a finite, normal value or exact zero.
    fn number(&mut self) -> Option<Value<'a>> {
        let start = self.at;
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => _ = self.digits(),
            _ => return None,
        }
        let mut float = false;
        if self.eat(b'.').is_some() {
            (self.digits() > 0).then_some(())?;
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            (self.digits() > 0).then_some(())?;
            float = true;
        }
        let text = &self.text[start..self.at];
        if !float {
            let value: i64 = text.parse().ok().filter(|_| text.len() <= 18)?;
            return (value.unsigned_abs() <= MAX_EXACT_INT).then_some(Value::Int(value));
        }
        if text.len() > 32 {
            return None;
        }
        let value: f64 = text.parse().ok()?;
        let mantissa = text.split(['e', 'E']).next()?;
        let zero = !mantissa.bytes().any(|b| matches!(b, b'1'..=b'9'));
        let plain = if value == 0.0 {
            zero
        } else {
            value.is_normal()
        };
        plain.then_some(Value::Float(value))
    }

    fn value(&mut self, depth: u32) -> Option<Value<'a>> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Null),
            open @ (b'[' | b'{') if depth < MAX_DEPTH => {
                self.at += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                self.skip_ws();
                if self.eat(close).is_some() {
                    return Some(Value::Nested);
                }
                loop {
                    if open == b'{' {
                        self.skip_ws();
                        self.string()?;
                        self.skip_ws();
                        self.eat(b':')?;
                    }
                    self.value(depth + 1)?;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        c if c == close => {
                            self.at += 1;
                            return Some(Value::Nested);
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The event contract (msgspec's `Event` in strict mode, then `parse_time`)

/// Fields of `stream_detector.events.Event` (others are ignored, as msgspec does).
#[derive(Clone, Copy)]
enum F {
    EventId,
    AccountId,
    Ts,
    AccountCreatedTs,
    OrgId,
    ApiKeyId,
    PaymentFingerprint,
    Ip,
    Asn,
    Country,
    UserAgent,
    Model,
    Endpoint,
    InputTokens,
    OutputTokens,
    MaxTokens,
    Temperature,
    Thinking,
    Tools,
    ToolCalls,
    ConversationTurns,
    Status,
    LatencyMs,
    SystemHash,
    Prompt,
}
const N_FIELDS: usize = F::Prompt as usize + 1;

fn field(key: &str) -> Option<F> {
    Some(match key {
        "event_id" => F::EventId,
        "account_id" => F::AccountId,
        "ts" => F::Ts,
        "account_created_ts" => F::AccountCreatedTs,
        "org_id" => F::OrgId,
        "api_key_id" => F::ApiKeyId,
        "payment_fingerprint" => F::PaymentFingerprint,
        "ip" => F::Ip,
        "asn" => F::Asn,
        "country" => F::Country,
        "user_agent" => F::UserAgent,
        "model" => F::Model,
        "endpoint" => F::Endpoint,
        "input_tokens" => F::InputTokens,
        "output_tokens" => F::OutputTokens,
        "max_tokens" => F::MaxTokens,
        "temperature" => F::Temperature,
        "thinking" => F::Thinking,
        "tools" => F::Tools,
        "tool_calls" => F::ToolCalls,
        "conversation_turns" => F::ConversationTurns,
        "status" => F::Status,
        "latency_ms" => F::LatencyMs,
        "system_hash" => F::SystemHash,
        "prompt" => F::Prompt,
        _ => return None,
    })
}

/// Top-level members by field, absent and null alike as None; a duplicate key gives up.
fn read_object(text: &str) -> Option<[Option<Value<'_>>; N_FIELDS]> {
    let mut r = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut fields: [Option<Value>; N_FIELDS] = Default::default();
    let mut seen = 0u32;
    r.skip_ws();
    r.eat(b'{')?;
    r.skip_ws();
    if r.eat(b'}').is_none() {
        loop {
            r.skip_ws();
            let key = r.string()?;
            r.skip_ws();
            r.eat(b':')?;
            let value = r.value(1)?;
            if let Some(index) = field(&key).map(|f| f as usize) {
                if seen & 1 << index != 0 {
                    return None;
                }
                seen |= 1 << index;
                fields[index] = (!matches!(value, Value::Null)).then_some(value);
            }
            r.skip_ws();
            match r.peek()? {
                b',' => r.at += 1,
                b'}' => {
                    r.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    r.skip_ws();
    (r.at == r.bytes.len()).then_some(fields)
}

/// A validated event: every field as msgspec would give it (None = absent or null).
struct Event<'a> {
    event_id: Cow<'a, str>,
    account_id: Cow<'a, str>,
    ts: f64,
    account_created_ts: Option<f64>,
    org_id: Option<Cow<'a, str>>,
    payment_fingerprint: Option<Cow<'a, str>>,
    ip: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    model: Option<Cow<'a, str>>,
    endpoint: Option<Cow<'a, str>>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    max_tokens: Option<i64>,
    temperature: Option<f64>,
    thinking: Option<bool>,
    tools: Option<i64>,
    tool_calls: Option<i64>,
    conversation_turns: Option<i64>,
    status: Option<i64>,
    system_hash: Option<Cow<'a, str>>,
    prompt: Option<Cow<'a, str>>,
}

/// Typed access to the members; each returns None (give up) when the value breaks the type.
/// The inner Option is the field's own None (absent or null).
struct Fields<'a>([Option<Value<'a>>; N_FIELDS]);

impl<'a> Fields<'a> {
    fn take(&mut self, name: F) -> Option<Value<'a>> {
        self.0[name as usize].take()
    }

    fn text(&mut self, name: F) -> Option<Option<Cow<'a, str>>> {
        match self.take(name) {
            None => Some(None),
            Some(Value::Str(s)) => Some(Some(s)),
            _ => None,
        }
    }

    fn sized_text(&mut self, name: F, max_chars: usize) -> Option<Cow<'a, str>> {
        let s = self.text(name)??;
        (1..=max_chars).contains(&s.chars().count()).then_some(s)
    }

    fn int(&mut self, name: F, min: i64) -> Option<Option<i64>> {
        match self.take(name) {
            None => Some(None),
            Some(Value::Int(i)) if i >= min => Some(Some(i)),
            _ => None,
        }
    }

    fn float(&mut self, name: F, min: f64) -> Option<Option<f64>> {
        match self.take(name) {
            None => Some(None),
            Some(Value::Int(i)) if i as f64 >= min => Some(Some(i as f64)),
            Some(Value::Float(x)) if x >= min => Some(Some(x)),
            _ => None,
        }
    }

    fn flag(&mut self, name: F) -> Option<Option<bool>> {
        match self.take(name) {
            None => Some(None),
            Some(Value::Bool(b)) => Some(Some(b)),
            _ => None,
        }
    }

    /// Epoch seconds in [0, max_epoch] or a common RFC 3339 form (`events.parse_time`).
    fn time(&mut self, name: F, max_epoch: f64) -> Option<Option<f64>> {
        let seconds = match self.take(name) {
            None => return Some(None),
            Some(Value::Int(i)) => i as f64,
            Some(Value::Float(x)) => x,
            Some(Value::Str(s)) => return rfc3339(&s).map(Some),
            _ => return None,
        };
        (0.0..=max_epoch)
            .contains(&seconds)
            .then_some(Some(seconds))
    }
}

fn validate(text: &str, max_epoch: f64) -> Option<Event<'_>> {
    let mut f = Fields(read_object(text)?);
    // An integer by the contract, checked and not kept: the network prefix is what links.
    f.int(F::Asn, 0)?;
    let event = Event {
        event_id: f.sized_text(F::EventId, 128)?,
        account_id: f.sized_text(F::AccountId, 256)?,
        ts: f.time(F::Ts, max_epoch)??,
        account_created_ts: f.time(F::AccountCreatedTs, max_epoch)?,
        org_id: f.text(F::OrgId)?,
        payment_fingerprint: f.text(F::PaymentFingerprint)?,
        ip: f.text(F::Ip)?,
        user_agent: f.text(F::UserAgent)?,
        model: f.text(F::Model)?,
        endpoint: f.text(F::Endpoint)?,
        input_tokens: f.int(F::InputTokens, 0)?,
        output_tokens: f.int(F::OutputTokens, 0)?,
        max_tokens: f.int(F::MaxTokens, 0)?,
        temperature: f.float(F::Temperature, f64::NEG_INFINITY)?,
        thinking: f.flag(F::Thinking)?,
        tools: f.int(F::Tools, 0)?,
        tool_calls: f.int(F::ToolCalls, 0)?,
        conversation_turns: f.int(F::ConversationTurns, 1)?,
        status: f.int(F::Status, i64::MIN)?,
        system_hash: f.text(F::SystemHash)?,
        prompt: f.text(F::Prompt)?,
    };
    // Validated but not kept by `derive`.
    f.text(F::ApiKeyId)?;
    f.text(F::Country)?;
    f.float(F::LatencyMs, 0.0)?;
    Some(event)
}

/// `datetime.fromisoformat(s).timestamp()` for `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)`
/// within ±2**53 µs of the epoch, where the microsecond count and its division are exact.
fn rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, byte: u8| (b.get(at) == Some(&byte)).then_some(());
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    sep(4, b'-')?;
    sep(7, b'-')?;
    sep(10, b'T')?;
    sep(13, b':')?;
    sep(16, b':')?;
    let mut at = 19;
    let mut micros = 0;
    if sep(at, b'.').is_some() {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if !(1..=6).contains(&(at - start)) {
            return None;
        }
        micros = num(start..at)? * 10i64.pow((6 - (at - start)) as u32);
    }
    let offset = match b.get(at)? {
        b'Z' if at + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == b.len() => {
            sep(at + 3, b':')?;
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            (h * 3600 + m * 60) * if *sign == b'-' { -1 } else { 1 }
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let total = seconds * 1_000_000 + micros;
    (total.unsigned_abs() <= MAX_EXACT_INT).then(|| total as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------------
// Features (`stream_detector.features.derive`)

/// `zlib.crc32(data) << 32 | zlib.adler32(data)`.
fn stable_hash(text: &str) -> u64 {
    let mut adler = adler2::Adler32::new();
    adler.write_slice(text.as_bytes());
    u64::from(crc32fast::hash(text.as_bytes())) << 32 | u64::from(adler.checksum())
}

/// `network_prefix`: Some(prefix or None) when certain, None to leave it to Python (non-ASCII
/// digits, surrounding whitespace, IPv4-suffixed or scoped IPv6).
fn network_prefix(ip: &str) -> Option<Option<String>> {
    if !ip.is_ascii() {
        return None;
    }
    if let Some(octets) = dotted_quad(ip) {
        if octets.iter().any(|&o| o > 255) {
            return Some(None);
        }
        let mut net = String::with_capacity(18);
        for octet in &octets[..3] {
            push_int(&mut net, i64::from(*octet));
            net.push('.');
        }
        net.push_str("0/24");
        return Some(Some(net));
    }
    if ip
        .bytes()
        .any(|b| matches!(b, 0x09..=0x0d | 0x1c..=0x20 | b'.' | b'%'))
    {
        return None;
    }
    Some(ipv6(ip).map(|addr| ipv6_network(addr >> 80 << 80)))
}

/// The four numbers of `\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}` (ASCII digits) matching all of `ip`.
fn dotted_quad(ip: &str) -> Option<[u32; 4]> {
    let mut octets = [0; 4];
    let mut parts = ip.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if !(1..=3).contains(&part.len()) || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.bytes().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    }
    parts.next().is_none().then_some(octets)
}

/// `ipaddress.IPv6Address._ip_int_from_string` for addresses of hextets only.
fn ipv6(text: &str) -> Option<u128> {
    let parts: Vec<&str> = text.split(':').collect();
    let n = parts.len();
    if !(3..=9).contains(&n) {
        return None;
    }
    let mut skip = None;
    for (i, part) in parts.iter().enumerate().take(n - 1).skip(1) {
        if part.is_empty() {
            if skip.is_some() {
                return None;
            }
            skip = Some(i);
        }
    }
    let (hi, lo, skipped) = match skip {
        Some(at) => {
            let (mut hi, mut lo) = (at, n - at - 1);
            if parts[0].is_empty() {
                hi -= 1;
                if hi != 0 {
                    return None;
                }
            }
            if parts[n - 1].is_empty() {
                lo -= 1;
                if lo != 0 {
                    return None;
                }
            }
            (hi, lo, 8usize.checked_sub(hi + lo).filter(|&s| s >= 1)?)
        }
        None if n == 8 && !parts[0].is_empty() && !parts[7].is_empty() => (8, 0, 0),
        None => return None,
    };
    let hextet = |p: &str| -> Option<u128> {
        let ok = (1..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| u128::from_str_radix(p, 16).ok()).flatten()
    };
    let mut addr: u128 = 0;
    for part in &parts[..hi] {
        addr = addr << 16 | hextet(part)?;
    }
    addr = addr.checked_shl(16 * skipped as u32).unwrap_or(0);
    for part in &parts[n - lo..] {
        addr = addr << 16 | hextet(part)?;
    }
    Some(addr)
}

/// `str(ipaddress.IPv6Network((addr, 48)))`: hextets in hex, the first longest run of two or
/// more zero hextets compressed to `::`.
fn ipv6_network(addr: u128) -> String {
    let hextets: Vec<u16> = (0..8).map(|i| (addr >> (112 - 16 * i)) as u16).collect();
    let (mut best, mut best_len, mut run) = (0, 0, 0);
    for (i, &h) in hextets.iter().enumerate() {
        run = if h == 0 { run + 1 } else { 0 };
        if run > best_len {
            best_len = run;
            best = i + 1 - run;
        }
    }
    let mut parts: Vec<String> = hextets.iter().map(|h| format!("{h:x}")).collect();
    if best_len > 1 {
        let end = best + best_len;
        if end == parts.len() {
            parts.push(String::new());
        }
        parts.splice(best..end, [String::new()]);
        if best == 0 {
            parts.insert(0, String::new());
        }
    }
    parts.join(":") + "/48"
}

/// `client_family`: the first space-separated token, at most 64 code points, as name/major.minor.
fn client_family(agent: &str) -> String {
    let token = agent.split(' ').next().unwrap_or("");
    let token = token
        .char_indices()
        .nth(64)
        .map_or(token, |(end, _)| &token[..end]);
    match token.split_once('/') {
        Some((name, version)) if !version.is_empty() => {
            let cut = version
                .match_indices('.')
                .nth(1)
                .map_or(version.len(), |(i, _)| i);
            token[..name.len() + 1 + cut].to_owned()
        }
        Some((name, _)) => name.to_owned(),
        None => token.to_owned(),
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits, in exponent form when the
/// decimal point falls outside (-4, 16].
fn push_float_repr(out: &mut String, x: f64) {
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits = mantissa.replace('.', "");
    let (n, point) = (digits.len() as i32, exp + 1);
    out.push_str(sign);
    if point <= -4 || point > 16 {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(if exp < 0 { "e-" } else { "e+" });
        if exp.abs() < 10 {
            out.push('0');
        }
        push_int(out, i64::from(exp.abs()));
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', -point as usize));
        out.push_str(&digits);
    } else if point < n {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - n) as usize));
        out.push_str(".0");
    }
}

/// Appends the decimal digits of `value`, as `str(int)` does.
fn push_int(out: &mut String, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push('-');
    }
    out.extend(digits[at..].iter().map(|&d| d as char));
}

/// `request_shape`: crc32 of `f"{max_tokens}|{temperature}|{tools}|{bool(thinking)}|{endpoint}"`.
fn request_shape(e: &Event, max_tokens: i64) -> u32 {
    let mut text = String::with_capacity(64);
    push_int(&mut text, max_tokens);
    text.push('|');
    match e.temperature {
        Some(t) => push_float_repr(&mut text, if t == 0.0 { 0.0 } else { t }),
        None => text.push_str("None"),
    }
    text.push('|');
    match e.tools {
        Some(tools) => push_int(&mut text, tools),
        None => text.push_str("None"),
    }
    text.push_str(if e.thinking == Some(true) {
        "|True|"
    } else {
        "|False|"
    });
    text.push_str(e.endpoint.as_deref().unwrap_or("None"));
    crc32fast::hash(text.as_bytes())
}

/// crc32 of the bytes with ASCII digits folded to '0', `or 1` (a template skeleton).
fn fold_hash(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(buf.len()) {
        for (d, s) in buf.iter_mut().zip(chunk) {
            *d = if s.is_ascii_digit() { b'0' } else { *s };
        }
        hasher.update(&buf[..chunk.len()]);
    }
    hasher.finalize().max(1)
}

/// The blanks `prompts._BLANKS` collapses (ASCII, not the line break).
fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c)
}

/// `_BLANKS.sub(b" ", piece).strip(b" ")` into `out` (cleared first).
fn collapse(piece: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut blank = false;
    for &c in piece {
        if is_blank(c) {
            blank = true;
        } else {
            if blank && !out.is_empty() {
                out.push(b' ');
            }
            blank = false;
            out.push(c);
        }
    }
}

/// Length of the segment break at `data[i..]` (`prompts.SEGMENT_BREAK`), 0 if none.
fn segment_break(data: &[u8], i: usize) -> usize {
    match data[i] {
        b'\n' => 1,
        b'.' | b'?' | b'!' | b':' | b';' => {
            let next = data.get(i + 1);
            usize::from(next.is_none_or(|&c| is_blank(c) || c == b'\n'))
        }
        0xE3 if data[i..].starts_with(&[0xE3, 0x80, 0x82]) => 3,
        0xEF if data.len() >= i + 3
            && data[i + 1] == 0xBC
            && matches!(data[i + 2], 0x9F | 0x81 | 0x9A | 0x9B) =>
        {
            3
        }
        _ => 0,
    }
}

/// `prompts.skeleton`: (head, tail) fingerprints of the first and last substantial segments
/// of an instruction window (the whole window's ends when none is substantial).
fn skeleton(data: &[u8], skel: usize, min_segment: usize) -> (u32, u32) {
    let mut segment = Vec::with_capacity(256);
    let mut first: Option<Vec<u8>> = None;
    let mut last: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut consider = |piece: &[u8], first: &mut Option<Vec<u8>>, last: &mut Vec<u8>| {
        collapse(piece, &mut segment);
        if segment.len() >= min_segment {
            if first.is_none() {
                *first = Some(segment[..segment.len().min(skel)].to_vec());
            }
            last.clear();
            last.extend_from_slice(&segment[segment.len().saturating_sub(skel)..]);
        }
    };
    while i < data.len() {
        let width = segment_break(data, i);
        if width == 0 {
            i += 1;
            continue;
        }
        consider(&data[start..i], &mut first, &mut last);
        i += width;
        start = i;
    }
    consider(&data[start..], &mut first, &mut last);
    match first {
        Some(head) => (fold_hash(&head), fold_hash(&last)),
        None => {
            let joined: Vec<u8> = data
                .iter()
                .map(|&c| if c == b'\n' { b' ' } else { c })
                .collect();
            let mut whole = Vec::with_capacity(joined.len());
            collapse(&joined, &mut whole);
            (
                fold_hash(&whole[..whole.len().min(skel)]),
                fold_hash(&whole[whole.len().saturating_sub(skel)..]),
            )
        }
    }
}

// Per-character facts learned from Python itself (its Unicode version, its `str.lower`).
const KNOWN: u32 = 1 << 31;
const ALNUM: u32 = 1 << 30;
/// Lower-casing is not one code point to one code point, or depends on context (capital
/// sigma): such a text is lower-cased by Python's `str.lower`.
const CONTEXTUAL: u32 = 1 << 29;
const CHAR_BITS: u32 = 0x1F_FFFF;

/// Bit values of the `EventFeatures.flags` the native path sets (from `features.py`).
struct Flags {
    has_prompt: i64,
    thinking: i64,
    agentic: i64,
    ceiling_hit: i64,
    long_output: i64,
    rate_limited: i64,
    temperature_zero: i64,
    multi_turn: i64,
    batch_endpoint: i64,
    small_budget: i64,
}

/// `EventFeatures.__slots__`, in the order `Parser::derive` gives their values.
const SLOTS: [&str; 17] = [
    "account_id",
    "client",
    "created_ts",
    "event_digest",
    "flags",
    "head_fp",
    "input_tokens",
    "max_tokens",
    "model",
    "net",
    "org",
    "output_tokens",
    "payment",
    "shape",
    "system",
    "tail_fp",
    "ts",
];

/// Parses raw events into `EventFeatures` (one per process; built by `stream_detector.features`).
#[pyclass(frozen, module = "stream_detector._native")]
struct Parser {
    features: Py<PyType>,
    /// The member descriptor of each slot and its setter (faster than a `setattr` by name).
    slots: Vec<(PyObject, ffi::descrsetfunc)>,
    lexicon: AhoCorasick,
    /// (intent flag, whole word only) of each lexicon pattern.
    entries: Vec<(i64, bool)>,
    /// Lazily filled facts per code point (0 = not asked yet).
    chars: Vec<AtomicU32>,
    flags: Flags,
    scan_chars: usize,
    skeleton_chars: usize,
    min_segment_bytes: usize,
    long_output_tokens: i64,
    small_budget_tokens: i64,
    max_event_bytes: usize,
    max_epoch_s: f64,
}

impl Parser {
    fn char_facts(&self, py: Python<'_>, c: char) -> PyResult<u32> {
        let slot = &self.chars[c as usize];
        let known = slot.load(Ordering::Relaxed);
        if known != 0 {
            return Ok(known);
        }
        let text = PyString::new(py, c.encode_utf8(&mut [0; 4]));
        let lower: String = text.call_method0(intern!(py, "lower"))?.extract()?;
        let alnum: bool = text.call_method0(intern!(py, "isalnum"))?.extract()?;
        let mut mapped = lower.chars();
        let mapping = match (mapped.next(), mapped.next()) {
            (Some(one), None) if c != '\u{3A3}' => one as u32,
            _ => CONTEXTUAL,
        };
        let facts = KNOWN | mapping | if alnum { ALNUM } else { 0 };
        slot.store(facts, Ordering::Relaxed);
        Ok(facts)
    }

    fn is_alnum(&self, py: Python<'_>, c: char) -> PyResult<bool> {
        Ok(if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            self.char_facts(py, c)? & ALNUM != 0
        })
    }

    /// Appends `text.lower()` to `out`.
    fn push_lower(&self, py: Python<'_>, text: &str, out: &mut String) -> PyResult<()> {
        let mark = out.len();
        if text.is_ascii() {
            out.push_str(text);
            out[mark..].make_ascii_lowercase();
            return Ok(());
        }
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            let facts = self.char_facts(py, c)?;
            if facts & CONTEXTUAL != 0 {
                out.truncate(mark);
                let lower = PyString::new(py, text).call_method0(intern!(py, "lower"))?;
                out.push_str(lower.downcast::<PyString>()?.to_str()?);
                return Ok(());
            }
            out.push(char::from_u32(facts & CHAR_BITS).unwrap_or(c));
        }
        Ok(())
    }

    /// `prompts.prompt_features`: (intent flags, head fingerprint, tail fingerprint).
    fn prompt_features(&self, py: Python<'_>, prompt: &str) -> PyResult<(i64, u32, u32)> {
        let scan = self.scan_chars;
        let chars = if prompt.is_ascii() {
            prompt.len()
        } else {
            prompt.chars().count()
        };
        let mut window = String::with_capacity(prompt.len().min(4 * scan) + 8);
        if chars > 2 * scan {
            let byte_at = |n: usize| {
                prompt
                    .char_indices()
                    .nth(n)
                    .map_or(prompt.len(), |(i, _)| i)
            };
            let (head, tail) = if prompt.is_ascii() {
                (scan, chars - scan)
            } else {
                (byte_at(scan), byte_at(chars - scan))
            };
            self.push_lower(py, &prompt[..head], &mut window)?;
            window.push('\n');
            self.push_lower(py, &prompt[tail..], &mut window)?;
        } else {
            self.push_lower(py, prompt, &mut window)?;
        }
        let data = window.as_bytes();
        let (head, tail) = skeleton(data, self.skeleton_chars, self.min_segment_bytes);
        let mut intents = 0;
        for found in self.lexicon.find_overlapping_iter(data) {
            let (flag, whole_word) = self.entries[found.pattern().as_usize()];
            if intents & flag != 0 {
                continue;
            }
            if whole_word {
                let before = window[..found.start()].chars().next_back();
                let after = window[found.end()..].chars().next();
                if before.map_or(Ok(false), |c| self.is_alnum(py, c))?
                    || after.map_or(Ok(false), |c| self.is_alnum(py, c))?
                {
                    continue;
                }
            }
            intents |= flag;
        }
        Ok((intents, head, tail))
    }

    /// `features.derive`; None when the IP needs Python.
    fn derive<'py>(&self, py: Python<'py>, e: &Event) -> PyResult<Option<Bound<'py, PyAny>>> {
        let net = match e.ip.as_deref() {
            Some(ip) if !ip.is_empty() => match network_prefix(ip) {
                Some(net) => net,
                None => return Ok(None),
            },
            _ => None,
        };
        let fl = &self.flags;
        let out = e.output_tokens.unwrap_or(0);
        let ceiling = e.max_tokens.unwrap_or(0);
        let (mut flags, head_fp, tail_fp) = match e.prompt.as_deref() {
            Some(p) if !p.is_empty() => {
                let (intents, head, tail) = self.prompt_features(py, p)?;
                (fl.has_prompt | intents, head, tail)
            }
            _ => (0, 0, 0),
        };
        let conditions = [
            (e.thinking == Some(true), fl.thinking),
            (
                e.tools.unwrap_or(0) != 0 || e.tool_calls.unwrap_or(0) != 0,
                fl.agentic,
            ),
            (
                ceiling != 0 && out as f64 >= 0.9 * ceiling as f64,
                fl.ceiling_hit,
            ),
            (out >= self.long_output_tokens, fl.long_output),
            (
                ceiling > 0 && ceiling <= self.small_budget_tokens,
                fl.small_budget,
            ),
            (e.status == Some(429), fl.rate_limited),
            (e.temperature == Some(0.0), fl.temperature_zero),
            (e.conversation_turns.is_some_and(|t| t >= 3), fl.multi_turn),
            (
                e.endpoint.as_deref().is_some_and(|p| p.contains("batch")),
                fl.batch_endpoint,
            ),
        ];
        for (holds, bit) in conditions {
            if holds {
                flags |= bit;
            }
        }

        let text = |s: Option<&str>| -> PyObject {
            s.map_or_else(|| py.None(), |s| PyString::new(py, s).into_any().unbind())
        };
        let int = |i: i64| -> PyObject {
            i.into_pyobject(py)
                .map_or_else(|e| match e {}, |i| i.into_any().unbind())
        };
        let account_id = unsafe {
            // `sys.intern`: one string object per account, however many events name it.
            let mut ptr = PyString::new(py, &e.account_id).into_ptr();
            ffi::PyUnicode_InternInPlace(&mut ptr);
            PyObject::from_owned_ptr(py, ptr)
        };
        let client = e
            .user_agent
            .as_deref()
            .filter(|a| !a.is_empty())
            .map(client_family);
        let values: [PyObject; SLOTS.len()] = [
            account_id,
            text(client.as_deref()),
            e.account_created_ts
                .map_or_else(|| py.None(), |t| PyFloat::new(py, t).into_any().unbind()),
            stable_hash(&e.event_id)
                .into_pyobject(py)
                .map_or_else(|e| match e {}, |d| d.into_any().unbind()),
            int(flags),
            int(i64::from(head_fp)),
            int(e.input_tokens.unwrap_or(0)),
            int(ceiling),
            text(e.model.as_deref()),
            text(net.as_deref()),
            text(e.org_id.as_deref()),
            int(out),
            text(e.payment_fingerprint.as_deref()),
            int(i64::from(request_shape(e, ceiling))),
            text(e.system_hash.as_deref()),
            int(i64::from(tail_fp)),
            PyFloat::new(py, e.ts).into_any().unbind(),
        ];
        let f = unsafe {
            // `EventFeatures.__new__(EventFeatures)`: a bare instance, its slots set below.
            let cls = self.features.bind(py).as_type_ptr();
            let alloc = (*cls).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            Bound::from_owned_ptr_or_err(py, alloc(cls, 0))?
        };
        for ((descr, set), value) in self.slots.iter().zip(values) {
            if unsafe { set(descr.as_ptr(), f.as_ptr(), value.as_ptr()) } != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        Ok(Some(f))
    }
}

#[pymethods]
impl Parser {
    /// `features`: the `EventFeatures` class; `lexicon`: entry -> (intent flag, whole word);
    /// `flags`: bit of each event flag by name; the rest: the Python constants of the same name.
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        features: Bound<'_, PyType>,
        lexicon: Bound<'_, PyDict>,
        flags: Bound<'_, PyDict>,
        scan_chars: usize,
        skeleton_chars: usize,
        min_segment_bytes: usize,
        long_output_tokens: i64,
        small_budget_tokens: i64,
        max_event_bytes: usize,
        max_epoch_s: f64,
    ) -> PyResult<Self> {
        let mut patterns = Vec::new();
        let mut entries = Vec::new();
        for (entry, meaning) in lexicon.iter() {
            patterns.push(entry.extract::<String>()?);
            entries.push(meaning.extract::<(i64, bool)>()?);
        }
        let lexicon = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .prefilter(false)
            .build(&patterns)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let bit = |name: &str| -> PyResult<i64> {
            flags
                .get_item(name)?
                .ok_or_else(|| PyValueError::new_err(format!("no flag {name}")))?
                .extract()
        };
        let mut slots = Vec::new();
        for name in SLOTS {
            let descr = features.getattr(name)?;
            let set = unsafe { (*ffi::Py_TYPE(descr.as_ptr())).tp_descr_set };
            let set = set.ok_or_else(|| PyValueError::new_err(format!("{name} is not a slot")))?;
            slots.push((descr.unbind(), set));
        }
        Ok(Parser {
            features: features.unbind(),
            slots,
            lexicon,
            entries,
            chars: (0..=char::MAX as u32).map(|_| AtomicU32::new(0)).collect(),
            flags: Flags {
                has_prompt: bit("HAS_PROMPT")?,
                thinking: bit("THINKING")?,
                agentic: bit("AGENTIC")?,
                ceiling_hit: bit("CEILING_HIT")?,
                long_output: bit("LONG_OUTPUT")?,
                rate_limited: bit("RATE_LIMITED")?,
                temperature_zero: bit("TEMPERATURE_ZERO")?,
                multi_turn: bit("MULTI_TURN")?,
                batch_endpoint: bit("BATCH_ENDPOINT")?,
                small_budget: bit("SMALL_BUDGET")?,
            },
            scan_chars,
            skeleton_chars,
            min_segment_bytes,
            long_output_tokens,
            small_budget_tokens,
            max_event_bytes,
            max_epoch_s,
        })
    }

    /// The event's `EventFeatures`, or None: then the Python path decides (and may reject).
    fn features<'py>(
        &self,
        py: Python<'py>,
        raw: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Ok(raw) = raw.downcast::<PyBytes>() else {
            return Ok(None);
        };
        let raw = raw.as_bytes();
        if raw.len() > self.max_event_bytes {
            return Ok(None);
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            return Ok(None);
        };
        match validate(text, self.max_epoch_s) {
            Some(event) => self.derive(py, &event),
            None => Ok(None),
        }
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Parser>()?;
    m.add_class::<state::AccountStateCore>()?;
    m.add_function(wrap_pyfunction!(timing::compare, m)?)?;
    m.add(
        "STATE_LAYOUT",
        (
            state::N_FLAGS,
            state::RING,
            state::REPEATS,
            state::RECENT,
            state::SIZE,
        ),
    )
}
