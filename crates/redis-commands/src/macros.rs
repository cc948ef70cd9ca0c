//! The `commands!` macro: one declaration per command, many surfaces.

/// Declares a group of commands, each written once.
///
/// For each declaration it emits a builder function returning [`Typed`](crate::Typed), a
/// method on the group's trait (available on every [`Executor`](crate::Executor), its reply
/// typed by the executor's [`Mode`](crate::Mode)) and a row
/// in the group's [`CommandInfo`](crate::CommandInfo) table.
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
        pub trait $trait: $crate::Executor {
            $(
                $(#[$doc])*
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
