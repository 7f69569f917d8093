//! A data-only pickle reader, enough for CIFAR's python batches (dicts of numpy arrays, lists,
//! strings and ints; protocols 2 to 5, as written by Python 2 cPickle or Python 3 pickle).
//!
//! Nothing is executed: globals are kept as names and calls as unevaluated `Call` nodes, which
//! [`Value::ndarray`] recognises for numpy's two array reduce forms. Objects live in an arena so
//! that memoised references see later mutation (APPENDS, SETITEMS, BUILD) as in Python.

use std::fmt;

/// A pickled value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// `module.name`, unresolved.
    Global(String),
    /// `func(*args)`, unevaluated; `state` is what BUILD applied afterwards.
    Call {
        func: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
}

/// A numpy array recovered from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// numpy type code such as `u1` or `i8`.
    pub dtype: String,
    /// `<`, `>` or `|`.
    pub byteorder: char,
    pub shape: Vec<usize>,
    pub fortran: bool,
    pub data: Vec<u8>,
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleError(pub String);

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pickle: {}", self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError(msg.into()))
}

/// Arena object: containers refer to other objects by index.
#[derive(Debug, Clone)]
enum Obj {
    Leaf(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Call {
        func: usize,
        args: usize,
        state: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Mark,
    Obj(usize),
}

struct Machine<'a> {
    b: &'a [u8],
    pos: usize,
    arena: Vec<Obj>,
    stack: Vec<Slot>,
    memo: std::collections::HashMap<u64, usize>,
    budget: std::cell::Cell<usize>,
}

/// Most values materialised from one pickle (a CIFAR batch needs a few hundred thousand).
const MAX_NODES: usize = 50_000_000;

/// Loads one pickled value.
pub fn loads(bytes: &[u8]) -> Result<Value, PickleError> {
    loads_within(bytes, MAX_NODES)
}

/// [`loads`], materialising at most `max_nodes` values (the rest become `None`).
fn loads_within(bytes: &[u8], max_nodes: usize) -> Result<Value, PickleError> {
    let mut m = Machine {
        b: bytes,
        pos: 0,
        arena: Vec::new(),
        stack: Vec::new(),
        memo: Default::default(),
        budget: std::cell::Cell::new(max_nodes),
    };
    let top = m.run()?;
    Ok(m.value(top, 0))
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return err(format!("truncated at byte {} (need {n} more)", self.pos));
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let s = self.take(n)?;
        Ok(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.b[self.pos..];
        let Some(n) = rest.iter().position(|&c| c == b'\n') else {
            return err("unterminated text line");
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn push(&mut self, o: Obj) {
        self.arena.push(o);
        self.stack.push(Slot::Obj(self.arena.len() - 1));
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(Slot::Obj(i)) => Ok(i),
            _ => err(format!("stack underflow at byte {}", self.pos)),
        }
    }

    fn top(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(Slot::Obj(i)) => Ok(*i),
            _ => err(format!("empty stack at byte {}", self.pos)),
        }
    }

    /// Pops everything above the topmost MARK.
    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let Some(m) = self.stack.iter().rposition(|s| matches!(s, Slot::Mark)) else {
            return err("MARK missing");
        };
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .map(|s| if let Slot::Obj(i) = s { i } else { 0 })
            .collect())
    }

    fn leaf(&mut self, v: Value) {
        self.push(Obj::Leaf(v));
    }

    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            let op = self.take(1)?[0];
            if op == b'.' {
                return self.pop();
            }
            self.step(op)?;
        }
    }

    fn step(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            0x80 => drop(self.take(1)?), // PROTO
            0x95 => drop(self.take(8)?), // FRAME
            b'(' => self.stack.push(Slot::Mark),
            b'N' => self.leaf(Value::None),
            0x88 => self.leaf(Value::Bool(true)),
            0x89 => self.leaf(Value::Bool(false)),
            b'J' => {
                let v = self.uint(4)? as u32 as i32 as i64;
                self.leaf(Value::Int(v))
            }
            b'K' => {
                let v = self.uint(1)? as i64;
                self.leaf(Value::Int(v))
            }
            b'M' => {
                let v = self.uint(2)? as i64;
                self.leaf(Value::Int(v))
            }
            0x8a | 0x8b => self.long(op)?,
            b'G' => {
                let v = f64::from_be_bytes(
                    self.take(8)?
                        .try_into()
                        .map_err(|_| PickleError("float".into()))?,
                );
                self.leaf(Value::Float(v))
            }
            b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96 => self.bytes(op)?,
            b'X' | 0x8c | 0x8d => self.unicode(op)?,
            b'}' => self.push(Obj::Dict(Vec::new())),
            b']' => self.push(Obj::List(Vec::new())),
            b')' => self.push(Obj::Tuple(Vec::new())),
            _ => self.step_structure(op)?,
        }
        Ok(())
    }

    fn step_structure(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            b't' => {
                let items = self.pop_mark()?;
                self.push(Obj::Tuple(items))
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items: Vec<usize> = (0..n).map(|_| self.pop()).collect::<Result<_, _>>()?;
                items.reverse();
                self.push(Obj::Tuple(items))
            }
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![self.pop()?]
                } else {
                    self.pop_mark()?
                };
                let list = self.top()?;
                match &mut self.arena[list] {
                    Obj::List(v) => v.extend(items),
                    _ => return err("APPEND to a non-list"),
                }
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = self.pop()?;
                    vec![self.pop()?, v]
                } else {
                    self.pop_mark()?
                };
                let dict = self.top()?;
                match &mut self.arena[dict] {
                    Obj::Dict(d) => d.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1]))),
                    _ => return err("SETITEM on a non-dict"),
                }
            }
            _ => self.step_refs(op)?,
        }
        Ok(())
    }

    fn step_refs(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            b'q' | b'r' => {
                let k = self.uint(if op == b'q' { 1 } else { 4 })?;
                let top = self.top()?;
                self.memo.insert(k, top);
            }
            0x94 => {
                let (k, top) = (self.memo.len() as u64, self.top()?);
                self.memo.insert(k, top);
            }
            b'h' | b'j' => {
                let k = self.uint(if op == b'h' { 1 } else { 4 })?;
                let Some(&i) = self.memo.get(&k) else {
                    return err(format!("memo {k} unset"));
                };
                self.stack.push(Slot::Obj(i));
            }
            b'c' => {
                let name = format!("{}.{}", self.line()?, self.line()?);
                self.leaf(Value::Global(name))
            }
            0x93 => {
                let (name, module) = (self.pop()?, self.pop()?);
                let g = format!("{}.{}", self.text(module), self.text(name));
                self.leaf(Value::Global(g))
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.push(Obj::Call {
                    func,
                    args,
                    state: None,
                })
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                if let Obj::Call { state: s, .. } = &mut self.arena[target] {
                    *s = Some(state);
                }
            }
            b'0' => drop(self.pop()?),
            b'1' => drop(self.pop_mark()?),
            b'2' => {
                let t = self.top()?;
                self.stack.push(Slot::Obj(t));
            }
            _ => {
                return err(format!(
                    "unsupported opcode 0x{op:02x} at byte {}",
                    self.pos - 1
                ))
            }
        }
        Ok(())
    }

    fn long(&mut self, op: u8) -> Result<(), PickleError> {
        let n = self.uint(if op == 0x8a { 1 } else { 4 })? as usize;
        let s = self.take(n)?;
        if n > 8 {
            return err("integer wider than 64 bits");
        }
        let mut buf = if s.last().is_some_and(|&x| x & 0x80 != 0) {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        buf[..n].copy_from_slice(s);
        self.leaf(Value::Int(i64::from_le_bytes(buf)));
        Ok(())
    }

    fn bytes(&mut self, op: u8) -> Result<(), PickleError> {
        let n = match op {
            b'U' | b'C' => self.uint(1)?,
            b'T' | b'B' => self.uint(4)?,
            _ => self.uint(8)?,
        } as usize;
        let v = self.take(n)?.to_vec();
        self.leaf(Value::Bytes(v));
        Ok(())
    }

    fn unicode(&mut self, op: u8) -> Result<(), PickleError> {
        let n = match op {
            0x8c => self.uint(1)?,
            b'X' => self.uint(4)?,
            _ => self.uint(8)?,
        } as usize;
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.leaf(Value::Str(s));
        Ok(())
    }

    fn text(&self, i: usize) -> String {
        match &self.arena[i] {
            Obj::Leaf(Value::Str(s)) => s.clone(),
            Obj::Leaf(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        }
    }

    /// Materialises an arena object. Depth and node budget guard against self-referencing
    /// pickles and memo-sharing bombs (a list repeated in itself 64 levels deep).
    fn value(&self, i: usize, depth: usize) -> Value {
        let spent = self.budget.get();
        if depth > 64 || spent == 0 {
            return Value::None;
        }
        self.budget.set(spent - 1);
        let all = |v: &[usize]| v.iter().map(|&j| self.value(j, depth + 1)).collect();
        match &self.arena[i] {
            Obj::Leaf(v) => v.clone(),
            Obj::List(v) => Value::List(all(v)),
            Obj::Tuple(v) => Value::Tuple(all(v)),
            Obj::Dict(d) => Value::Dict(
                d.iter()
                    .map(|&(k, v)| (self.value(k, depth + 1), self.value(v, depth + 1)))
                    .collect(),
            ),
            Obj::Call { func, args, state } => Value::Call {
                func: Box::new(self.value(*func, depth + 1)),
                args: Box::new(self.value(*args, depth + 1)),
                state: state.map(|s| Box::new(self.value(s, depth + 1))),
            },
        }
    }
}

impl Value {
    /// Looks up a dict entry by string key, whether pickled as bytes (Python 2) or str.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Dict(d) = self else { return None };
        d.iter()
            .find(|(k, _)| k.as_text().as_deref() == Some(key))
            .map(|(_, v)| v)
    }

    /// Bytes, including Python 3's protocol-2 form `_codecs.encode(str, 'latin1')`.
    pub fn as_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Value::Bytes(b) => Some(b.clone()),
            Value::Call { func, args, .. } if **func == Value::Global("_codecs.encode".into()) => {
                let Value::Tuple(a) = &**args else {
                    return None;
                };
                match a.first()? {
                    Value::Str(s) => Some(s.chars().map(|c| c as u32 as u8).collect()),
                    _ => None,
                }
            }
            // bytes() with no arguments, as protocol 2 writes b''.
            Value::Call { func, .. } if **func == Value::Global("__builtin__.bytes".into()) => {
                Some(Vec::new())
            }
            _ => None,
        }
    }

    /// A string from str or bytes.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            other => other
                .as_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }
    }

    /// Integers of a list or tuple.
    pub fn as_ints(&self) -> Option<Vec<i64>> {
        match self {
            Value::List(v) | Value::Tuple(v) => v
                .iter()
                .map(|x| match x {
                    Value::Int(i) => Some(*i),
                    Value::Bool(b) => Some(*b as i64),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// Recognises numpy's array pickles: `_reconstruct(...)` + BUILD state (protocols 2-4) and
    /// `_frombuffer(buffer, dtype, shape, order)` (protocol 5).
    pub fn ndarray(&self) -> Option<NdArray> {
        let Value::Call { func, args, state } = self else {
            return None;
        };
        let Value::Global(name) = &**func else {
            return None;
        };
        let Value::Tuple(args) = &**args else {
            return None;
        };
        if name.ends_with("multiarray._reconstruct") {
            let Value::Tuple(st) = &**state.as_ref()? else {
                return None;
            };
            // (version, shape, dtype, is_fortran, data)
            let (dtype, byteorder) = dtype(st.get(2)?)?;
            let shape = shape(st.get(1)?)?;
            let fortran = matches!(st.get(3)?, Value::Bool(true) | Value::Int(1));
            let data = st.get(4)?.as_bytes()?;
            return Some(NdArray {
                dtype,
                byteorder,
                shape,
                fortran,
                data,
            });
        }
        if name.ends_with("numeric._frombuffer") {
            let data = args.first()?.as_bytes()?;
            let (dtype, byteorder) = dtype(args.get(1)?)?;
            let shape = shape(args.get(2)?)?;
            let fortran = args.get(3)?.as_text()? == "F";
            return Some(NdArray {
                dtype,
                byteorder,
                shape,
                fortran,
                data,
            });
        }
        None
    }
}

fn shape(v: &Value) -> Option<Vec<usize>> {
    v.as_ints()?
        .into_iter()
        .map(|d| usize::try_from(d).ok())
        .collect()
}

/// `numpy.dtype('u1', ...)` with BUILD state `(3, '<', ...)` -> ("u1", '<').
fn dtype(v: &Value) -> Option<(String, char)> {
    let Value::Call { func, args, state } = v else {
        return None;
    };
    let Value::Global(name) = &**func else {
        return None;
    };
    if !name.ends_with(".dtype") {
        return None;
    }
    let Value::Tuple(a) = &**args else {
        return None;
    };
    let code = a.first()?.as_text()?;
    let order = match state.as_deref() {
        Some(Value::Tuple(s)) => s
            .get(1)
            .and_then(Value::as_text)
            .and_then(|t| t.chars().next()),
        _ => None,
    };
    Some((code, order.unwrap_or('<')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long1_integers_up_to_64_bits_keep_their_sign() {
        // `pickle.dumps(-2**40, protocol=2)`, `pickle.dumps(2**40, protocol=2)`.
        let neg = loads(b"\x80\x02\x8a\x06\x00\x00\x00\x00\x00\xff.").expect("loads");
        assert_eq!(neg, Value::Int(-(1 << 40)));
        let pos = loads(b"\x80\x02\x8a\x06\x00\x00\x00\x00\x00\x01.").expect("loads");
        assert_eq!(pos, Value::Int(1 << 40));
        let mut eight = b"\x80\x02\x8a\x08".to_vec();
        eight.extend((1i64 << 62).to_le_bytes());
        eight.push(b'.');
        assert_eq!(loads(&eight).expect("8 bytes fit"), Value::Int(1 << 62));
        // `pickle.dumps(2**70, protocol=2)`: 9 bytes.
        let wide = b"\x80\x02\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@.";
        assert!(loads(wide).unwrap_err().0.contains("wider than 64 bits"));
    }

    #[test]
    fn bytes_in_every_form_python_writes_them() {
        // Protocol 3: SHORT_BINBYTES and BINBYTES (4-byte length).
        assert_eq!(
            loads(b"\x80\x03C\x02ab.").expect("loads"),
            Value::Bytes(b"ab".to_vec())
        );
        let long = loads(b"\x80\x03B\x02\x00\x00\x00ab.").expect("loads");
        assert_eq!(long, Value::Bytes(b"ab".to_vec()));
        // Protocol 2 from Python 3: `_codecs.encode('\u00e9ab', 'latin1')`, and b'' as bytes().
        let p2 = b"\x80\x02c_codecs\nencode\nq\x00X\x04\x00\x00\x00\xc3\xa9abq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
        assert_eq!(
            loads(p2).expect("loads").as_bytes(),
            Some(b"\xe9ab".to_vec())
        );
        let empty = b"\x80\x02c__builtin__\nbytes\nq\x00)Rq\x01.";
        assert_eq!(loads(empty).expect("loads").as_bytes(), Some(vec![]));
        // Another call is not bytes.
        let other = b"\x80\x02c__builtin__\nset\nq\x00)Rq\x01.";
        assert_eq!(loads(other).expect("loads").as_bytes(), None);
    }

    #[test]
    fn values_nested_deeper_than_64_levels_are_cut() {
        // 70 nested empty lists, each appended to the one below.
        let mut p = vec![0x80, 2];
        p.extend([b']'; 70]);
        p.extend([b'a'; 69]);
        p.push(b'.');
        let mut v = loads(&p).expect("loads");
        let mut lists = 0;
        while let Value::List(items) = v {
            lists += 1;
            v = items.into_iter().next().unwrap_or(Value::Int(-1));
        }
        // Depths 0 to 64 are lists; the 66th level is cut to None.
        assert_eq!((lists, v), (65, Value::None));
    }

    #[test]
    fn binfloat_is_read_and_errors_say_they_are_pickle_errors() {
        // `pickle.dumps(1.5, protocol=2)`.
        let v = loads(b"\x80\x02G?\xf8\x00\x00\x00\x00\x00\x00.").expect("loads");
        assert_eq!(v, Value::Float(1.5));
        assert_eq!(PickleError("bad".into()).to_string(), "pickle: bad");
    }

    /// `pickle.dumps({b'labels': [1, 300, -2], 'x': (None, True, 'é')}, protocol=2)`, by hand.
    #[test]
    fn reads_protocol_2_containers_with_memo() {
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'(', b'U', 6];
        p.extend_from_slice(b"labels");
        p.extend_from_slice(&[b'q', 1, b']', b'q', 2, b'(', b'K', 1, b'M', 0x2c, 0x01]);
        p.extend_from_slice(&[b'J', 0xfe, 0xff, 0xff, 0xff, b'e']);
        p.extend_from_slice(&[0x8c, 1, b'x', b'N', 0x88, 0x8c, 2, 0xc3, 0xa9, 0x87, b'u']);
        p.extend_from_slice(&[b'h', 2, b'0', b'.']); // BINGET the list, POP, STOP on the dict
        let v = loads(&p).unwrap();
        assert_eq!(
            v.get("labels").unwrap().as_ints().unwrap(),
            vec![1, 300, -2]
        );
        let Value::Tuple(t) = v.get("x").unwrap() else {
            panic!("not a tuple")
        };
        assert_eq!(t[2], Value::Str("é".into()));
    }

    #[test]
    fn truncation_and_unknown_opcodes_are_errors() {
        assert!(loads(&[0x80, 2, b'X', 9, 0, 0, 0, b'a'])
            .unwrap_err()
            .0
            .contains("truncated"));
        assert!(loads(&[0x80, 2, b'S'])
            .unwrap_err()
            .0
            .contains("unsupported opcode 0x53"));
    }

    /// Values in `v`, counting every node (a `None` cut by the budget counts too).
    fn nodes(v: &Value) -> usize {
        1 + match v {
            Value::List(items) | Value::Tuple(items) => items.iter().map(nodes).sum(),
            Value::Dict(d) => d.iter().map(|(k, v)| nodes(k) + nodes(v)).sum(),
            Value::Call { func, args, state } => {
                nodes(func) + nodes(args) + state.as_deref().map_or(0, nodes)
            }
            _ => 0,
        }
    }

    #[test]
    fn a_memo_sharing_bomb_stops_at_the_node_budget() {
        // l0 = []; l(k+1) = [lk, lk] (MARK, two BINGETs, APPENDS): 18 levels are 2^19 - 1
        // nodes from 168 bytes.
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for k in 0..18u8 {
            p.extend([b']', b'q', k + 1, b'(', b'h', k, b'h', k, b'e']);
        }
        p.push(b'.');
        let whole = loads(&p).expect("loads");
        assert_eq!(nodes(&whole), (1 << 19) - 1);
        let cut = loads_within(&p, 1000).expect("loads");
        // 1000 real values and the Nones that stand for the rest of each cut list.
        assert!(nodes(&cut) < 3000, "{} nodes", nodes(&cut));
        assert_ne!(cut, whole);
    }

    #[test]
    fn build_states_count_towards_the_depth_cut() {
        // 70 calls, each the BUILD state of the one before: c.f(), ..., then None, 70 BUILDs.
        let mut p = vec![0x80, 2];
        for _ in 0..70 {
            p.extend(b"cm\nf\n)R");
        }
        p.push(b'N');
        p.extend([b'b'; 70]);
        p.push(b'.');
        let mut v = loads(&p).expect("loads");
        let mut calls = 0;
        while let Value::Call { state, .. } = v {
            calls += 1;
            v = state.map_or(Value::Int(-1), |s| *s);
        }
        // Depths 0 to 64 are calls; the state at depth 65 is cut to None.
        assert_eq!((calls, v), (65, Value::None));
    }

    #[test]
    fn pop_mark_drops_everything_down_to_the_mark() {
        // [] ; MARK 1 2 POP_MARK ; 3 APPEND -> [3] (protocol 1 writes POP_MARK).
        let p = [b']', b'(', b'K', 1, b'K', 2, b'1', b'K', 3, b'a', b'.'];
        assert_eq!(loads(&p).expect("loads"), Value::List(vec![Value::Int(3)]));
    }
}
