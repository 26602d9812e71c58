//! `live_view` requests: the first byte picks the method, the rest is split at the first NUL
//! into the request target (path and query) and the `Authorization` header value, as hyper hands
//! them over (what hyper refuses never reaches the view). No input may panic. Without a token
//! nothing is refused as unauthorized; with one, the token never changes where a request goes,
//! only whether it is answered; a route served is the route of the path, with GET or HEAD only.
#![no_main]

use customersim_sink_live_view::{Decision, Route, decide};
use http::{HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "PUT", "OPTIONS"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let method = Method::from_bytes(METHODS[usize::from(pick) % METHODS.len()].as_bytes())
        .expect("a known method");
    let (target, authorization) = match rest.iter().position(|&byte| byte == 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let authorization = match authorization.map(HeaderValue::from_bytes) {
        Some(Ok(value)) => Some(value),
        Some(Err(_)) => return,
        None => None,
    };
    let open = decide(&method, &uri, authorization.as_ref(), None);
    assert_ne!(open, Decision::Unauthorized, "{uri} without a token");
    for token in ["s3cret", "a&b c"] {
        let guarded = decide(&method, &uri, authorization.as_ref(), Some(token));
        assert!(
            guarded == open || guarded == Decision::Unauthorized,
            "{uri}: the token changed the route: {open:?} -> {guarded:?}"
        );
        if guarded == Decision::Unauthorized {
            assert!(
                Route::of(uri.path()).is_none_or(|route| !route.open()),
                "{uri}"
            );
        }
    }
    match open {
        Decision::Serve(route) => {
            assert_eq!(Route::of(uri.path()), Some(route), "{uri}");
            assert!(method == Method::GET || method == Method::HEAD);
        }
        Decision::NotFound => assert_eq!(Route::of(uri.path()), None, "{uri}"),
        Decision::MethodNotAllowed => assert!(Route::of(uri.path()).is_some(), "{uri}"),
        Decision::Unauthorized => unreachable!(),
    }
    let _ = open.status();
});
