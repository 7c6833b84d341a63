//! Lua 5.4 pattern matching (the matcher behind `string.find`, `match`,
//! `gmatch` and `gsub`) with a step budget.
//!
//! Lua's own matcher (lstrlib.c) runs in C, where the instruction-count hook
//! never fires: `("a"):rep(20000):find(("a*"):rep(40) .. "b")` backtracks for
//! longer than the universe is old and holds a worker forever. This is the
//! same algorithm, step for step (backtracking, `MAXCCALLS` depth, 32
//! captures, the same error messages), except that every [`CHECK_EVERY`]
//! steps it asks its budget whether to go on. It works on bytes, with C's
//! "C" locale character classes, as Lua does.
//!
//! Positions are byte offsets into the subject. Reading one past the end of
//! the subject or pattern yields 0, as C's terminating NUL does, because
//! lstrlib relies on that (`%f` at the end, `(` as the last byte, ...).

/// Captures one match may have (LUA_MAXCAPTURES).
pub const MAX_CAPTURES: usize = 32;
/// Nesting of `match` calls before "pattern too complex" (MAXCCALLS).
const MAX_DEPTH: usize = 200;
/// Steps between two budget checks: a check reads the clock (tens of ns),
/// a step is a few ns, so this keeps checks under 1% of the work.
pub const CHECK_EVERY: u32 = 4096;

const ESC: u8 = b'%';
const SPECIALS: &[u8] = b"^$*+?.([%-";

/// Why a match stopped without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// A malformed pattern or capture use, with Lua's message.
    Pattern(String),
    /// The budget said stop.
    OutOfBudget,
}

fn malformed<T>(msg: impl Into<String>) -> Result<T, MatchError> {
    Err(MatchError::Pattern(msg.into()))
}

type Found = Result<Option<usize>, MatchError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapLen {
    Unfinished,
    Position,
    Len(usize),
}

/// One capture of a successful match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// The subject's bytes `start..end`.
    Span(usize, usize),
    /// A position capture `()`: the 1-based position.
    Position(usize),
}

/// True when `p` has none of the magic characters, so `find` may search plainly.
pub fn no_specials(p: &[u8]) -> bool {
    !p.iter().any(|c| SPECIALS.contains(c))
}

/// `posrelatI`: a 1-based start position from Lua's `init`, clamped to 1.
pub fn start_index(init: i64, len: usize) -> usize {
    if init > 0 {
        init as usize
    } else if init == 0 || init.unsigned_abs() > len as u64 {
        1
    } else {
        (len as i64 + init + 1) as usize
    }
}

/// The matching state over one subject and one pattern (without a leading
/// `^`, which the callers handle as Lua does).
pub struct Matcher<'a, B: FnMut() -> bool> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    caps: [(usize, CapLen); MAX_CAPTURES],
    depth: usize,
    steps: u32,
    /// Asked every [`CHECK_EVERY`] steps; false stops the match.
    budget: B,
}

impl<'a, B: FnMut() -> bool> Matcher<'a, B> {
    pub fn new(src: &'a [u8], pat: &'a [u8], budget: B) -> Self {
        Matcher {
            src,
            pat,
            level: 0,
            caps: [(0, CapLen::Unfinished); MAX_CAPTURES],
            depth: MAX_DEPTH,
            steps: 0,
            budget,
        }
    }

    /// Tries to match the whole pattern at subject offset `s`; the end of the match if it does.
    pub fn match_at(&mut self, s: usize) -> Found {
        self.level = 0;
        self.depth = MAX_DEPTH;
        self.do_match(s, 0)
    }

    /// The captures of the last successful match `s..e`, as `push_captures`:
    /// the whole match when the pattern has none and `whole` is set.
    pub fn captures(&self, s: usize, e: usize, whole: bool) -> Result<Vec<Capture>, MatchError> {
        let n = if self.level == 0 && whole { 1 } else { self.level };
        (0..n).map(|i| self.capture(i, s, e)).collect()
    }

    /// Capture `i` (0-based) of the match `s..e`; index 0 without captures is the whole match.
    pub fn capture(&self, i: usize, s: usize, e: usize) -> Result<Capture, MatchError> {
        if i >= self.level {
            if i != 0 {
                return malformed(format!("invalid capture index %{}", i + 1));
            }
            return Ok(Capture::Span(s, e));
        }
        match self.caps[i] {
            (_, CapLen::Unfinished) => malformed("unfinished capture"),
            (init, CapLen::Position) => Ok(Capture::Position(init + 1)),
            (init, CapLen::Len(l)) => Ok(Capture::Span(init, init + l)),
        }
    }

    fn pb(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    fn sb(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn tick(&mut self) -> Result<(), MatchError> {
        self.steps += 1;
        if self.steps >= CHECK_EVERY {
            self.steps = 0;
            if !(self.budget)() {
                return Err(MatchError::OutOfBudget);
            }
        }
        Ok(())
    }

    fn do_match(&mut self, s: usize, p: usize) -> Found {
        if self.depth == 0 {
            return malformed("pattern too complex");
        }
        self.depth -= 1;
        let r = self.match_here(s, p);
        self.depth += 1;
        r
    }

    /// lstrlib's `match`, its `goto init` being the loop.
    fn match_here(&mut self, mut s: usize, mut p: usize) -> Found {
        loop {
            self.tick()?;
            if p == self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' if self.pb(p + 1) == b')' => return self.start_capture(s, p + 2, CapLen::Position),
                b'(' => return self.start_capture(s, p + 1, CapLen::Unfinished),
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => return Ok((s == self.src.len()).then_some(s)),
                ESC if self.pb(p + 1) == b'b' => match self.match_balance(s, p + 2)? {
                    Some(e) => {
                        s = e;
                        p += 4;
                        continue;
                    }
                    None => return Ok(None),
                },
                ESC if self.pb(p + 1) == b'f' => {
                    p += 2;
                    if self.pb(p) != b'[' {
                        return malformed("missing '[' after '%f' in pattern");
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    if !self.bracket_class(previous, p, ep - 1) && self.bracket_class(self.sb(s), p, ep - 1) {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                ESC if self.pb(p + 1).is_ascii_digit() => match self.match_capture(s, self.pb(p + 1))? {
                    Some(e) => {
                        s = e;
                        p += 2;
                        continue;
                    }
                    None => return Ok(None),
                },
                _ => {}
            }
            // A single-character class, maybe followed by a repetition.
            let ep = self.class_end(p)?;
            let rep = self.pb(ep);
            if !self.single_match(s, p, ep) {
                if matches!(rep, b'*' | b'?' | b'-') {
                    p = ep + 1;
                    continue;
                }
                return Ok(None);
            }
            match rep {
                b'?' => {
                    if let Some(r) = self.do_match(s + 1, ep + 1)? {
                        return Ok(Some(r));
                    }
                    p = ep + 1;
                }
                b'+' => return self.max_expand(s + 1, p, ep),
                b'*' => return self.max_expand(s, p, ep),
                b'-' => return self.min_expand(s, p, ep),
                _ => {
                    s += 1;
                    p = ep;
                }
            }
        }
    }

    /// Where the single-character class at `p` ends.
    fn class_end(&self, p: usize) -> Result<usize, MatchError> {
        let len = self.pat.len();
        let c = self.pat[p];
        let mut p = p + 1;
        match c {
            ESC if p == len => malformed("malformed pattern (ends with '%')"),
            ESC => Ok(p + 1),
            b'[' => {
                if self.pb(p) == b'^' {
                    p += 1;
                }
                // The first `]` after `[` or `[^` is a member, not the end.
                loop {
                    if p == len {
                        return malformed("malformed pattern (missing ']')");
                    }
                    let c = self.pat[p];
                    p += 1;
                    if c == ESC && p < len {
                        p += 1;
                    }
                    if self.pb(p) == b']' {
                        return Ok(p + 1);
                    }
                }
            }
            _ => Ok(p),
        }
    }

    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else { return false };
        match self.pat[p] {
            b'.' => true,
            ESC => class_matches(c, self.pb(p + 1)),
            b'[' => self.bracket_class(c, p, ep - 1),
            literal => literal == c,
        }
    }

    /// `[...]` from `p` (the `[`) to `ec` (the `]`).
    fn bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.pb(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !sig;
            }
            if self.pat[p] == ESC {
                p += 1;
                if class_matches(c, self.pb(p)) {
                    return sig;
                }
            } else if self.pb(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.pat[p - 2] <= c && c <= self.pat[p] {
                    return sig;
                }
            } else if self.pat[p] == c {
                return sig;
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Found {
        let mut i = 0;
        while self.single_match(s + i, p, ep) {
            i += 1;
            self.tick()?;
        }
        loop {
            if let Some(r) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(r));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Found {
        loop {
            if let Some(r) = self.do_match(s, ep + 1)? {
                return Ok(Some(r));
            }
            if !self.single_match(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn match_balance(&mut self, s: usize, p: usize) -> Found {
        if p + 1 >= self.pat.len() {
            return malformed("malformed pattern (missing arguments to '%b')");
        }
        if self.sb(s) != self.pat[p] {
            return Ok(None);
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        let mut depth = 1;
        for i in s + 1..self.src.len() {
            self.tick()?;
            let c = self.src[i];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    fn start_capture(&mut self, s: usize, p: usize, what: CapLen) -> Found {
        if self.level >= MAX_CAPTURES {
            return malformed("too many captures");
        }
        self.caps[self.level] = (s, what);
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Found {
        let Some(l) = (0..self.level).rev().find(|&l| self.caps[l].1 == CapLen::Unfinished) else {
            return malformed("invalid pattern capture");
        };
        self.caps[l].1 = CapLen::Len(s - self.caps[l].0);
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.caps[l].1 = CapLen::Unfinished;
        }
        Ok(r)
    }

    /// A back reference `%1`..`%9`.
    fn match_capture(&mut self, s: usize, digit: u8) -> Found {
        let l = digit as i64 - b'1' as i64;
        if l < 0 || l >= self.level as i64 || self.caps[l as usize].1 == CapLen::Unfinished {
            return malformed(format!("invalid capture index %{}", l + 1));
        }
        // A position capture has no text, and (as in C, where its length is
        // negative) never matches.
        let (init, CapLen::Len(len)) = self.caps[l as usize] else { return Ok(None) };
        let ok = self.src.len() - s >= len && self.src[init..init + len] == self.src[s..s + len];
        Ok(ok.then_some(s + len))
    }
}

/// `%a`, `%d`, ... in the C locale; an upper-case class is the complement,
/// any other character stands for itself.
fn class_matches(c: u8, class: u8) -> bool {
    let res = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's isspace includes \v, which Rust's is_ascii_whitespace leaves out.
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        // Deprecated since 5.2 but still in 5.4's lstrlib.
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() { !res } else { res }
}
