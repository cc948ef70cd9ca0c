//! A command being built: its encoded arguments, where its keys are, and its facts.

use bytes::{Bytes, BytesMut};
use std::marker::PhantomData;
use std::ops::Range;
use std::time::Duration;

/// Facts about a command that decide how it may be sent and retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(u16);

impl Flags {
    /// No special facts.
    pub const NONE: Flags = Flags(0);
    /// Reads data and changes nothing: safe to retry.
    pub const READONLY: Flags = Flags(1);
    /// May block on the server (BLPOP, XREAD BLOCK, WAIT …); its wait comes from
    /// [`Cmd::blocking_timeout`].
    pub const BLOCKING: Flags = Flags(2);
    /// Administrative or connection-scoped (CONFIG, CLIENT, DEBUG …).
    pub const ADMIN: Flags = Flags(4);
    /// Changes the state of the connection it runs on (RESET, QUIT, CLIENT REPLY,
    /// CLIENT TRACKING, CLIENT SETNAME, READONLY …), so the connection is not the one the
    /// next user expects. The connection core learns the same from a command's first
    /// words, which is what covers raw commands; a test keeps the two in agreement.
    pub const CONNECTION_STATE: Flags = Flags(8);
    /// Cluster routing: runs on every primary, its replies merged (FLUSHALL, KEYS …).
    pub const ALL_PRIMARIES: Flags = Flags(16);
    /// Cluster routing: runs on every node, primaries and replicas (CONFIG SET, PING …).
    pub const ALL_NODES: Flags = Flags(32);
    /// Cluster routing: a multi-key command whose keys may be split over nodes, each part
    /// a command of its own (MGET, MSET, DEL, EXISTS, UNLINK, TOUCH). The arguments from one
    /// key to the next go with that key.
    pub const SPLIT: Flags = Flags(64);
    /// Cluster merge: the integer replies of the parts are added up (DEL, DBSIZE …).
    pub const MERGE_SUM: Flags = Flags(128);
    /// Cluster merge: the array replies of the parts are concatenated (KEYS).
    pub const MERGE_CONCAT: Flags = Flags(256);
    /// Cluster merge: the array replies are combined element by element with a logical
    /// AND (SCRIPT EXISTS: present only if present everywhere).
    pub const MERGE_AND: Flags = Flags(512);
    /// May be answered from a client-side cache: read-only, about one key, and its reply
    /// depends only on that key's value and the arguments (not on the time, randomness or
    /// other keys). The whole command is the cache key; an invalidation of its key drops it.
    /// A command with more than one key at run time (EXISTS a b) is not served from cache.
    pub const CACHEABLE: Flags = Flags(1024);

    /// Both sets of facts.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// True if every fact in `other` is in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

/// How long a blocking command may wait on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Does not block.
    No,
    /// Blocks up to this long.
    For(Duration),
    /// Blocks until it is served (a timeout argument of 0).
    Forever,
}

/// A command: name, encoded arguments and facts. Built by the command functions in
/// [`crate::cmd`] or by hand with [`Cmd::new`] for anything else.
///
/// Arguments are encoded as RESP bulk strings as they are added, so sending a command
/// copies its bytes once, into the socket.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::Cmd;
/// let mut cmd = Cmd::new("SET");
/// cmd.key("greeting").arg("hello").arg(42);
/// assert_eq!(cmd.argc(), 4);
/// assert_eq!(cmd.keys().collect::<Vec<_>>(), vec![&b"greeting"[..]]);
/// ```
#[derive(Clone, Debug)]
pub struct Cmd {
    name: &'static str,
    flags: Flags,
    block: Block,
    argc: usize,
    /// The arguments while they are being written.
    body: Store,
    /// The arguments once [`Cmd::share_body`] handed them out (`body` is empty then).
    shared: Option<Bytes>,
    /// Byte ranges in the arguments of those that are keys (payload only).
    keys: KeyRanges,
}

/// Where the key arguments are. Most commands have one key, kept inline so recording it
/// does not allocate.
#[derive(Clone, Debug, Default)]
struct KeyRanges {
    first: Option<Range<usize>>,
    rest: Vec<Range<usize>>,
}

impl KeyRanges {
    fn push(&mut self, r: Range<usize>) {
        if self.first.is_none() {
            self.first = Some(r);
        } else {
            self.rest.push(r);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Range<usize>> {
        self.first.iter().chain(self.rest.iter())
    }
}

/// Bytes of arguments a command holds inline: enough for a GET or a SET of a short value
/// (`$3\r\nSET\r\n$16\r\n<key>\r\n$16\r\n<value>\r\n` is 55), so building one does not
/// allocate at all.
const INLINE: usize = 80;

/// Where a command's arguments are written: inline while they are short, in a buffer of
/// their own beyond.
#[derive(Clone, Debug)]
enum Store {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(BytesMut),
}

impl Default for Store {
    fn default() -> Self {
        Store::Inline {
            len: 0,
            buf: [0; INLINE],
        }
    }
}

impl Store {
    fn as_slice(&self) -> &[u8] {
        match self {
            Store::Inline { len, buf } => &buf[..usize::from(*len)],
            Store::Heap(b) => b,
        }
    }

    /// Appends `parts`, moving to the heap if they no longer fit inline.
    fn extend(&mut self, parts: &[&[u8]]) {
        let add: usize = parts.iter().map(|p| p.len()).sum();
        if let Store::Inline { len, buf } = self {
            let at = usize::from(*len);
            if at + add <= INLINE {
                let mut pos = at;
                for p in parts {
                    buf[pos..pos + p.len()].copy_from_slice(p);
                    pos += p.len();
                }
                // At most INLINE (80), so it fits.
                *len = pos as u8;
                return;
            }
        }
        let heap = self.heap(add);
        for p in parts {
            heap.extend_from_slice(p);
        }
    }

    /// The arguments in a buffer of their own, with room for `more` bytes.
    fn heap(&mut self, more: usize) -> &mut BytesMut {
        if let Store::Inline { len, buf } = self {
            let used = usize::from(*len);
            let mut heap = BytesMut::with_capacity((used + more).max(2 * INLINE));
            heap.extend_from_slice(&buf[..used]);
            *self = Store::Heap(heap);
        }
        match self {
            Store::Heap(b) => b,
            Store::Inline { .. } => unreachable!("moved to the heap just above"),
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Store::Inline { len, buf } => Bytes::copy_from_slice(&buf[..usize::from(len)]),
            Store::Heap(b) => b.freeze(),
        }
    }
}

/// The decimal digits of `n`, written into `buf`.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = n;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

impl Cmd {
    /// A command whose first argument is `name` (which may hold a subcommand, e.g.
    /// `"CONFIG GET"`: each word becomes one argument).
    pub fn new(name: &'static str) -> Self {
        let mut cmd = Cmd {
            name,
            flags: Flags::NONE,
            block: Block::No,
            argc: 0,
            body: Store::default(),
            shared: None,
            keys: KeyRanges::default(),
        };
        for word in name.split(' ') {
            cmd.push_arg(word.as_bytes());
        }
        cmd
    }

    /// A command built from arguments alone, name included (the dynamic path).
    pub fn from_args<A: ToArgs>(args: A) -> Self {
        let mut cmd = Cmd {
            name: "",
            flags: Flags::NONE,
            block: Block::No,
            argc: 0,
            body: Store::default(),
            shared: None,
            keys: KeyRanges::default(),
        };
        args.write_args(&mut cmd);
        cmd
    }

    /// Sets the command's facts.
    pub fn with_flags(mut self, flags: Flags) -> Self {
        self.flags = flags;
        self
    }

    /// Appends one or more arguments.
    pub fn arg<A: ToArgs>(&mut self, a: A) -> &mut Self {
        a.write_args(self);
        self
    }

    /// Appends arguments that are key names (recorded for cluster routing).
    pub fn key<A: ToArgs>(&mut self, k: A) -> &mut Self {
        self.unshare();
        let start = self.body.as_slice().len();
        k.write_args(self);
        // Walk the bulk strings just written (`$<len>\r\n<payload>\r\n`) to record each
        // payload's range.
        let mut pos = start;
        let body = self.body.as_slice();
        while pos < body.len() {
            let mut len = 0usize;
            let mut i = pos + 1;
            while let Some(&d) = body.get(i).filter(|d| d.is_ascii_digit()) {
                len = len * 10 + usize::from(d - b'0');
                i += 1;
            }
            let payload = i + 2;
            self.keys.push(payload..payload + len);
            pos = payload + len + 2;
        }
        self
    }

    /// Marks the command as blocking on the server for up to `timeout`
    /// ([`Duration::ZERO`]: until served, as a timeout argument of 0 means), so a client
    /// waits that long for its reply (plus a margin) instead of failing at its read
    /// timeout.
    pub fn block_for(&mut self, timeout: Duration) -> &mut Self {
        self.flags = self.flags | Flags::BLOCKING;
        self.block = if timeout.is_zero() {
            Block::Forever
        } else {
            Block::For(timeout)
        };
        self
    }

    /// Appends one already-encoded-as-bytes argument.
    #[inline]
    pub fn push_arg(&mut self, data: &[u8]) {
        self.unshare();
        let mut digits = [0u8; 20];
        let len = decimal(data.len() as u64, &mut digits);
        self.body.extend(&[b"$", len, b"\r\n", data, b"\r\n"]);
        self.argc += 1;
    }

    /// Takes the arguments back (copied) from the shared form if [`Cmd::share_body`]
    /// handed them out, so more can be appended.
    #[inline]
    fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut heap = BytesMut::with_capacity(shared.len() + INLINE);
            heap.extend_from_slice(&shared);
            self.body = Store::Heap(heap);
        }
    }

    /// The arguments' buffer on the heap, to append to with the protocol crate's writers.
    fn buf(&mut self) -> &mut BytesMut {
        self.unshare();
        self.body.heap(32)
    }

    /// Appends an integer argument, in the decimal form Redis parses.
    fn push_i64(&mut self, n: i64) {
        // 19 digits and a sign at most.
        let mut text = [0u8; 20];
        let mut at = text.len();
        let mut rest = n.unsigned_abs();
        loop {
            at -= 1;
            text[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if n < 0 {
            at -= 1;
            text[at] = b'-';
        }
        self.push_arg(&text[at..]);
    }

    /// The arguments as a [`Bytes`] sharing this command's storage, so a driver can
    /// write a large value without copying it (the async client's multiplexed
    /// connection); later calls return the same storage. Appending an argument afterwards
    /// copies the arguments back into a buffer of the command's own.
    ///
    /// Cost: O(1); the first call may allocate a small shared header.
    pub fn share_body(&mut self) -> Bytes {
        if let Some(shared) = &self.shared {
            return shared.clone();
        }
        let shared = std::mem::take(&mut self.body).freeze();
        self.shared = Some(shared.clone());
        shared
    }

    /// The arguments as shared by [`Cmd::share_body`], if they were.
    pub fn shared_body(&self) -> Option<&Bytes> {
        self.shared.as_ref()
    }

    /// The command's name as declared ("" when built by [`Cmd::from_args`]).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The command's facts.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// How long the server may hold the reply back.
    pub fn blocking_timeout(&self) -> Block {
        self.block
    }

    /// Number of arguments, name included.
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// The arguments, encoded as RESP bulk strings, without the array header.
    pub fn body(&self) -> &[u8] {
        match &self.shared {
            Some(shared) => shared,
            None => self.body.as_slice(),
        }
    }

    /// The key arguments.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let body = self.body();
        self.keys.iter().map(move |r| &body[r.clone()])
    }

    /// The first argument (the command name as sent), upper-cased for callback lookup.
    pub fn first_word(&self) -> String {
        let mut it = self.args();
        it.next()
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            .unwrap_or_default()
    }

    /// The arguments' payloads, in order.
    pub fn args(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let body = self.body();
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= body.len() {
                return None;
            }
            let nl = body[pos..].iter().position(|&b| b == b'\n')? + pos;
            let len: usize = std::str::from_utf8(&body[pos + 1..nl - 1])
                .ok()?
                .parse()
                .ok()?;
            let start = nl + 1;
            pos = start + len + 2;
            body.get(start..start + len)
        })
    }

    /// Appends the whole command (array header and arguments) to `out`.
    pub fn encode_into(&self, out: &mut BytesMut) {
        let body = self.body();
        out.reserve(body.len() + 16);
        resp_proto::write_array_len(out, self.argc);
        out.extend_from_slice(body);
    }

    /// The array header, written into `buf`, for sending header and body without copying
    /// the body.
    pub fn header<'b>(&self, buf: &'b mut [u8; 24]) -> &'b [u8] {
        let mut n = self.argc;
        let mut i = buf.len();
        buf[i - 1] = b'\n';
        buf[i - 2] = b'\r';
        i -= 2;
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        i -= 1;
        buf[i] = b'*';
        &buf[i..]
    }
}

/// A command together with the Rust type its reply converts to.
#[derive(Debug)]
#[must_use = "a command does nothing until it is run"]
pub struct Typed<T> {
    /// The command.
    pub cmd: Cmd,
    _reply: PhantomData<fn() -> T>,
}

impl<T> Typed<T> {
    /// Pairs `cmd` with reply type `T`.
    pub fn new(cmd: Cmd) -> Self {
        Typed {
            cmd,
            _reply: PhantomData,
        }
    }
}

/// Things that become one or more command arguments: byte strings and text (one argument
/// each, binary safe), integers and floats (formatted as Redis parses them), slices,
/// vectors, arrays, sets and tuples of those (one argument per element), and `HashMap`s
/// and `BTreeMap`s (each key followed by its value).
pub trait ToArgs {
    /// Appends this value's arguments to `cmd`.
    fn write_args(&self, cmd: &mut Cmd);
}

macro_rules! bytes_like {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            #[inline]
            fn write_args(&self, cmd: &mut Cmd) {
                cmd.push_arg(AsRef::<[u8]>::as_ref(self));
            }
        }
    )*};
}
bytes_like!(str, String, [u8], Vec<u8>, Bytes);

impl<const N: usize> ToArgs for [u8; N] {
    fn write_args(&self, cmd: &mut Cmd) {
        cmd.push_arg(self);
    }
}

macro_rules! integer_like {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            #[inline]
            fn write_args(&self, cmd: &mut Cmd) {
                cmd.push_i64(*self as i64);
            }
        }
    )*};
}
integer_like!(i8, i16, i32, i64, isize, u16, u32);

macro_rules! wide_unsigned {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            fn write_args(&self, cmd: &mut Cmd) {
                match i64::try_from(*self) {
                    Ok(n) => cmd.push_i64(n),
                    Err(_) => cmd.push_arg(self.to_string().as_bytes()),
                }
            }
        }
    )*};
}
wide_unsigned!(u64, usize);

impl ToArgs for f64 {
    #[inline]
    fn write_args(&self, cmd: &mut Cmd) {
        resp_proto::write_bulk_f64(cmd.buf(), *self);
        cmd.argc += 1;
    }
}

impl ToArgs for f32 {
    fn write_args(&self, cmd: &mut Cmd) {
        f64::from(*self).write_args(cmd);
    }
}

impl<T: ToArgs + ?Sized> ToArgs for &T {
    #[inline]
    fn write_args(&self, cmd: &mut Cmd) {
        (**self).write_args(cmd);
    }
}

impl<T: ToArgs> ToArgs for [T] {
    fn write_args(&self, cmd: &mut Cmd) {
        self.iter().for_each(|a| a.write_args(cmd));
    }
}

impl<T: ToArgs> ToArgs for Vec<T> {
    fn write_args(&self, cmd: &mut Cmd) {
        self.iter().for_each(|a| a.write_args(cmd));
    }
}

macro_rules! collection_args {
    ($($coll:ident),*) => {$(
        /// One argument per element, in the collection's iteration order.
        impl<T: ToArgs> ToArgs for std::collections::$coll<T> {
            fn write_args(&self, cmd: &mut Cmd) {
                self.iter().for_each(|a| a.write_args(cmd));
            }
        }
    )*};
}
collection_args!(VecDeque, BTreeSet);

/// One argument per element, in the set's iteration order.
impl<T: ToArgs, S> ToArgs for std::collections::HashSet<T, S> {
    fn write_args(&self, cmd: &mut Cmd) {
        self.iter().for_each(|a| a.write_args(cmd));
    }
}

/// Key/value pairs, flattened (`k1 v1 k2 v2 …`) in the map's iteration order: the shape of
/// HSET, MSET, MSETNX, HMSET and XADD fields. Each key and each value should be one
/// argument (a string, bytes or a number), or the pairs lose their order.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::Cmd;
/// use std::collections::BTreeMap;
/// let fields = BTreeMap::from([("name", "ada"), ("lang", "en")]);
/// let mut cmd = Cmd::new("HSET");
/// cmd.key("user:1").arg(&fields);
/// assert_eq!(cmd.args().skip(2).collect::<Vec<_>>(), [&b"lang"[..], b"en", b"name", b"ada"]);
/// ```
impl<K: ToArgs, V: ToArgs, S> ToArgs for std::collections::HashMap<K, V, S> {
    fn write_args(&self, cmd: &mut Cmd) {
        self.iter().for_each(|(k, v)| {
            k.write_args(cmd);
            v.write_args(cmd);
        });
    }
}

/// Key/value pairs, flattened in key order; see the `HashMap` implementation.
impl<K: ToArgs, V: ToArgs> ToArgs for std::collections::BTreeMap<K, V> {
    fn write_args(&self, cmd: &mut Cmd) {
        self.iter().for_each(|(k, v)| {
            k.write_args(cmd);
            v.write_args(cmd);
        });
    }
}

/// Arguments from any iterator that can be walked again (`Clone`), for variadic commands
/// fed from a computation rather than a collection.
///
/// ```
/// # use redis_commands as redis_client;
/// use redis_client::{Cmd, IterArgs};
/// let mut cmd = Cmd::new("DEL");
/// cmd.key(IterArgs((1..=3).map(|i| format!("k{i}"))));
/// assert_eq!(cmd.keys().collect::<Vec<_>>(), vec![&b"k1"[..], b"k2", b"k3"]);
/// ```
#[derive(Clone, Debug)]
pub struct IterArgs<I>(pub I);

impl<I> ToArgs for IterArgs<I>
where
    I: Iterator + Clone,
    I::Item: ToArgs,
{
    fn write_args(&self, cmd: &mut Cmd) {
        self.0.clone().for_each(|a| a.write_args(cmd));
    }
}

impl<T: ToArgs, const N: usize> ToArgs for [T; N] {
    fn write_args(&self, cmd: &mut Cmd) {
        self.iter().for_each(|a| a.write_args(cmd));
    }
}

impl<T: ToArgs> ToArgs for Option<T> {
    fn write_args(&self, cmd: &mut Cmd) {
        if let Some(a) = self {
            a.write_args(cmd);
        }
    }
}

macro_rules! tuple_args {
    ($($name:ident)+) => {
        impl<$($name: ToArgs),+> ToArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn write_args(&self, cmd: &mut Cmd) {
                let ($($name,)+) = self;
                $($name.write_args(cmd);)+
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A B);
tuple_args!(A B C);
tuple_args!(A B C D);
tuple_args!(A B C D E);
tuple_args!(A B C D E F);
tuple_args!(A B C D E F G);
tuple_args!(A B C D E F G H);

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments as resp-proto writes them, for comparison.
    fn reference(args: &[&[u8]]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for a in args {
            resp_proto::write_bulk(&mut out, a);
        }
        out.to_vec()
    }

    #[test]
    fn arguments_stay_inline_until_they_outgrow_it_and_read_the_same_after() {
        let mut cmd = Cmd::new("SET");
        cmd.key("k").arg(-42i64).arg(0u16).arg(i64::MIN);
        assert!(matches!(cmd.body, Store::Inline { .. }), "{cmd:?}");
        let min = i64::MIN.to_string();
        let max = u64::MAX.to_string();
        let mut args: Vec<&[u8]> = vec![b"SET", b"k", b"-42", b"0", min.as_bytes()];
        assert_eq!(cmd.body(), &reference(&args)[..]);
        cmd.arg(u64::MAX);
        args.push(max.as_bytes());
        assert_eq!(cmd.body(), &reference(&args)[..]);
        // A long argument moves everything to the heap, keys and all.
        let long = vec![b'x'; INLINE];
        cmd.key(&long[..]);
        args.push(&long);
        assert!(matches!(cmd.body, Store::Heap(_)));
        assert_eq!(cmd.body(), &reference(&args)[..]);
        assert_eq!(cmd.keys().collect::<Vec<_>>(), vec![&b"k"[..], &long[..]]);
        // Shared, then appended to: copied back, nothing lost.
        let shared = cmd.share_body();
        assert_eq!(&shared[..], &reference(&args)[..]);
        cmd.arg("more");
        args.push(b"more");
        assert_eq!(cmd.body(), &reference(&args)[..]);
    }

    #[test]
    fn header_matches_encoder() {
        let mut cmd = Cmd::new("MSET");
        cmd.arg([("a", 1), ("b", 2)]);
        let mut buf = [0u8; 24];
        assert_eq!(cmd.header(&mut buf), b"*5\r\n");
        let mut out = BytesMut::new();
        cmd.encode_into(&mut out);
        assert_eq!(
            &out[..],
            b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
    }

    #[test]
    fn keys_are_recorded() {
        let mut cmd = Cmd::new("MGET");
        cmd.key(["k1", "key-two"]);
        cmd.arg("not-a-key");
        let keys: Vec<_> = cmd.keys().collect();
        assert_eq!(keys, vec![&b"k1"[..], &b"key-two"[..]]);
        let args: Vec<_> = cmd.args().collect();
        assert_eq!(args, vec![&b"MGET"[..], b"k1", b"key-two", b"not-a-key"]);
    }

    #[test]
    fn subcommand_names_split() {
        let cmd = Cmd::new("CONFIG GET");
        assert_eq!(cmd.argc(), 2);
        assert_eq!(cmd.first_word(), "CONFIG");
    }
}
