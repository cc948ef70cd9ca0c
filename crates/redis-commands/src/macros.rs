//! The `commands!` macro: one declaration per command, many surfaces.

/// The "Reply:" line of a command method's docs: the declared reply type and its text-mode
/// form (every `Bytes` read as a `String`, the swap [`TextForm`](crate::TextForm) makes),
/// written out so a reader need not decode `Self::Output<<Self::Mode as Mode>::Reply<T>>`.
///
/// A token muncher over the type: `[binary pieces] [text pieces] [a mark per Bytes seen]`
/// then the tokens left. A parenthesised group is opened in place and closed by `@rparen`,
/// so both forms are built in one pass; a path prefix (`crate::types::`) is dropped.
macro_rules! reply_doc {
    ([$($b:expr),*] [$($t:expr),*] []) => {
        concat!("Reply: `", $($b,)* "`, the same in text mode.")
    };
    ([$($b:expr),*] [$($t:expr),*] [$($seen:tt)+]) => {
        concat!("Reply: `", $($b,)* "` (text mode: `", $($t,)* "`).")
    };
    ([$($b:expr),*] [$($t:expr),*] [$($s:tt)*] Bytes $($rest:tt)*) => {
        reply_doc!([$($b,)* "Bytes"] [$($t,)* "String"] [$($s)* x] $($rest)*)
    };
    ([$($b:expr),*] [$($t:expr),*] [$($s:tt)*] $seg:ident :: $($rest:tt)*) => {
        reply_doc!([$($b),*] [$($t),*] [$($s)*] $($rest)*)
    };
    ([$($b:expr),*] [$($t:expr),*] [$($s:tt)*] , $($rest:tt)*) => {
        reply_doc!([$($b,)* ", "] [$($t,)* ", "] [$($s)*] $($rest)*)
    };
    ([$($b:expr),*] [$($t:expr),*] [$($s:tt)*] ( $($inner:tt)* ) $($rest:tt)*) => {
        reply_doc!([$($b,)* "("] [$($t,)* "("] [$($s)*] $($inner)* @rparen $($rest)*)
    };
    ([$($b:expr),*] [$($t:expr),*] [$($s:tt)*] @rparen $($rest:tt)*) => {
        reply_doc!([$($b,)* ")"] [$($t,)* ")"] [$($s)*] $($rest)*)
    };
    ([$($b:expr),*] [$($t:expr),*] [$($s:tt)*] $tok:tt $($rest:tt)*) => {
        reply_doc!([$($b,)* stringify!($tok)] [$($t,)* stringify!($tok)] [$($s)*] $($rest)*)
    };
}

/// Declares a group of commands, each written once.
///
/// For each declaration it emits a builder function returning [`Typed`](crate::Typed), a
/// method on the group's trait (available on every [`Executor`](crate::Executor), its reply
/// typed by the executor's [`Mode`](crate::Mode)) and a row
/// in the group's [`CommandInfo`](crate::CommandInfo) table. Both the function and the
/// method end their docs with the reply type in plain words (`reply_doc!`).
///
/// ```text
/// commands! {
///     /// Commands on string values.
///     pub trait StringCommands, table STRINGS;
///
///     /// Returns the value of `key`, or `None` if it does not exist.
///     /// See <https://redis.io/commands/get/>.
///     "GET" [READONLY] fn get<K: ToArgs>(key: K) -> Option<Bytes> => |c| { c.key(key); }
/// }
/// ```
macro_rules! commands {
    (
        $(#[$tdoc:meta])*
        pub trait $trait:ident, table $table:ident;
        $(
            $(#[$doc:meta])*
            $cmdname:literal [$($flag:ident)|*]
            fn $name:ident $(<$($g:ident : $bound:path),* $(,)?>)? ($($arg:ident : $argty:ty),* $(,)?) -> $ret:ty
            => |$c:ident| $body:block
        )*
    ) => {
        $(
            $(#[$doc])*
            ///
            #[doc = reply_doc!([] [] [] $ret)]
            #[allow(clippy::too_many_arguments)]
            pub fn $name $(<$($g: $bound),*>)? ($($arg: $argty),*) -> $crate::Typed<$ret> {
                let mut cmd = $crate::Cmd::new($cmdname)
                    .with_flags($crate::Flags::NONE $(.union($crate::Flags::$flag))*);
                {
                    let $c = &mut cmd;
                    $body
                }
                $crate::Typed::new(cmd)
            }
        )*

        $(#[$tdoc])*
        ///
        /// Each method's docs end with its reply type, in byte mode and in text mode. What
        /// the method returns depends on what it is called on: a client gives that type in a
        /// `Result` (`r.get("k")?` is an `Option<Bytes>`, an `Option<String>` on `r.text()`),
        /// an async client a future of that `Result`, a pipeline queues the command and
        /// returns itself for chaining, a typed pipeline adds the type to its tuple.
        pub trait $trait: $crate::Executor {
            $(
                $(#[$doc])*
                ///
                #[doc = reply_doc!([] [] [] $ret)]
                #[allow(clippy::too_many_arguments)]
                fn $name $(<$($g: $bound),*>)? (self, $($arg: $argty),*)
                    -> Self::Output<<Self::Mode as $crate::Mode>::Reply<$ret>>
                {
                    self.run($crate::Typed::new($name($($arg),*).cmd))
                }
            )*
        }

        impl<E: $crate::Executor> $trait for E {}

        /// One row per command of this group.
        pub const $table: &[$crate::CommandInfo] = &[
            $(
                $crate::CommandInfo {
                    name: $cmdname,
                    method: stringify!($name),
                    flags: $crate::Flags::NONE $(.union($crate::Flags::$flag))*,
                    doc: concat!($(stringify!($doc), "\n"),*),
                },
            )*
        ];
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn reply_lines_spell_out_both_modes() {
        assert_eq!(
            reply_doc!([] [] [] Option<Bytes>),
            "Reply: `Option<Bytes>` (text mode: `Option<String>`)."
        );
        assert_eq!(
            reply_doc!([] [] [] Option<(Bytes, Vec<(Bytes, f64)>)>),
            "Reply: `Option<(Bytes, Vec<(Bytes, f64)>)>` (text mode: \
             `Option<(String, Vec<(String, f64)>)>`)."
        );
        assert_eq!(
            reply_doc!([] [] [] i64),
            "Reply: `i64`, the same in text mode."
        );
        assert_eq!(
            reply_doc!([] [] [] ()),
            "Reply: `()`, the same in text mode."
        );
        assert_eq!(
            reply_doc!([] [] [] crate::types::ValueMap),
            "Reply: `ValueMap`, the same in text mode."
        );
        assert_eq!(
            reply_doc!([] [] [] HashMap<Bytes, Bytes>),
            "Reply: `HashMap<Bytes, Bytes>` (text mode: `HashMap<String, String>`)."
        );
    }
}
