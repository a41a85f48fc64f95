//! `aggregate!`: an aggregate's trait written once, and `Store`'s implementation of
//! it made from that one text.
//!
//! Each aggregate file (`sessions.rs`, `tokens.rs`, …) declares its operations with
//! their contract inside `aggregate! { pub trait Name { fn op(&self, …) -> T; … } }`.
//! The macro emits the trait (each operation returning a `Send` future of
//! `StoreResult<T>`: native `impl Future` in a trait, no boxing, so the session check
//! costs what a direct call would) and `impl Name for Store`, which dispatches to the
//! backend (`RedisStore` or `MemoryStore`, each implementing the trait in a file of its
//! own), records the call's time in the store latency histogram, and then, for an
//! operation declared `-> T => after;`, calls `after(&store, &answer)` on success (how
//! sessions started and ended are counted). No operation's signature is written
//! anywhere else but in the two backends, where the compiler holds them to it.

/// See the module documentation. Operations take `&self` and at least one named
/// argument.
macro_rules! aggregate {
    (
        $(#[$trait_meta:meta])*
        pub trait $Trait:ident {
            $(
                $(#[$meta:meta])*
                fn $name:ident(&self, $($arg:ident: $ty:ty),+ $(,)?) -> $ret:ty $(=> $after:path)?;
            )*
        }
    ) => {
        $(#[$trait_meta])*
        pub trait $Trait {
            $(
                $(#[$meta])*
                fn $name(
                    &self
                    $(, $arg: $ty)*
                ) -> impl ::std::future::Future<Output = $crate::store::StoreResult<$ret>> + Send;
            )*
        }

        impl $Trait for $crate::store::Store {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $crate::store::StoreResult<$ret> {
                    let started = ::std::time::Instant::now();
                    let answer = match self {
                        $crate::store::Store::Redis(s) => $Trait::$name(s $(, $arg)*).await,
                        $crate::store::Store::Memory(s) => $Trait::$name(s $(, $arg)*).await,
                    };
                    self.observe_call(started);
                    $(
                        if let Ok(answer) = &answer {
                            $after(self, answer);
                        }
                    )?
                    answer
                }
            )*
        }
    };
}

pub(super) use aggregate;
