//! The registration attributes of the customersim plugin API. Use them through
//! `customersim_plugin_api` (`#[customersim_plugin_api::sink_config]`), not from this crate.
//!
//! Each attribute goes on a plugin's config type and does the three things a plugin must never
//! forget: derive serde's `Deserialize` and `Serialize` (through the API crate's serde, so the
//! plugin needs no serde dependency of its own) and schemars' `JsonSchema` (the pipeline file's
//! JSON Schema and reference pages come from it: field doc comments become descriptions), refuse
//! unknown keys (`deny_unknown_fields`: a
//! mistyped key is an error instead of a setting that silently does nothing), and register the type
//! with the core (an `inventory` submission naming the crate it came from).

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, parse_macro_input};

/// Registers a source config type (it must implement `PluginConfig` and `SourceConfig`).
#[proc_macro_attribute]
pub fn source_config(args: TokenStream, item: TokenStream) -> TokenStream {
    register(args, item, quote!(SourcePlugin))
}

/// Registers a sink config type (it must implement `PluginConfig` and `SinkConfig`).
#[proc_macro_attribute]
pub fn sink_config(args: TokenStream, item: TokenStream) -> TokenStream {
    register(args, item, quote!(SinkPlugin))
}

/// Registers a timeline backend config type (it must implement `PluginConfig` and
/// `TimelineConfig`).
#[proc_macro_attribute]
pub fn timeline_config(args: TokenStream, item: TokenStream) -> TokenStream {
    register(args, item, quote!(TimelinePlugin))
}

fn register(
    args: TokenStream,
    item: TokenStream,
    registration: proc_macro2::TokenStream,
) -> TokenStream {
    if !args.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "this attribute takes no arguments: name and description come from `PluginConfig`",
        )
        .to_compile_error()
        .into();
    }
    let input = parse_macro_input!(item as DeriveInput);
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return syn::Error::new_spanned(&input.generics, "a plugin config type cannot be generic")
            .to_compile_error()
            .into();
    }
    quote! {
        #[derive(
            ::customersim_plugin_api::__private::serde::Deserialize,
            ::customersim_plugin_api::__private::serde::Serialize,
            ::customersim_plugin_api::__private::schemars::JsonSchema
        )]
        #[serde(
            deny_unknown_fields,
            crate = "::customersim_plugin_api::__private::serde"
        )]
        #[schemars(crate = "::customersim_plugin_api::__private::schemars")]
        #input

        ::customersim_plugin_api::__private::inventory::submit! {
            ::customersim_plugin_api::#registration::of::<#name>(
                concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"))
            )
        }
    }
    .into()
}
