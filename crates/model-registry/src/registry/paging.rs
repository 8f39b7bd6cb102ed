//! List parameters as upstream reads them, and its page token: standard base64 of
//! `"<last id>:<sort value>"` (the value a number, or for the UI's name order the name).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use embedmd::store::{OrderColumn, OrderValue};
use serde::Deserialize;

use super::error::{Error, Result};

/// The query parameters of the list and find endpoints.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    pub filter_query: Option<String>,
    pub page_size: Option<String>,
    pub order_by: Option<String>,
    pub sort_order: Option<String>,
    pub next_page_token: Option<String>,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub artifact_type: Option<String>,
    pub step_ids: Option<String>,
    pub parent_resource_id: Option<String>,
    /// Orders by name (over `order_by`), for the UI: upstream's `orderBy` has no `NAME`, so a
    /// REST client cannot ask for it (an unknown value orders by id there, as upstream does).
    #[serde(skip)]
    pub by_name: bool,
}

/// The longest page token read: a name token holds up to 255 characters of 4 bytes each.
const MAX_TOKEN_LEN: usize = 2048;

/// Validated paging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// As requested; 0 when absent.
    pub size: i32,
    pub order: OrderColumn,
    pub descending: bool,
    pub after: Option<(i64, OrderValue)>,
}

impl Page {
    pub fn parse(params: &ListParams) -> Result<Page> {
        let size = match params.page_size.as_deref().filter(|s| !s.is_empty()) {
            None => 0,
            Some(s) => {
                s.parse::<i32>().map_err(|_| Error::bad_request(format!("invalid pageSize {s:?}: not a 32-bit integer")))?
            }
        };
        // Upstream silently orders by id for anything it does not know.
        let order = match params.order_by.as_deref() {
            _ if params.by_name => OrderColumn::Name,
            Some("CREATE_TIME") => OrderColumn::CreateTime,
            Some("LAST_UPDATE_TIME") => OrderColumn::UpdateTime,
            _ => OrderColumn::Id,
        };
        let descending = params.sort_order.as_deref() == Some("DESC");
        let after = match params.next_page_token.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(token) => Some(decode_token(token, order)?),
        };
        Ok(Page { size, order, descending, after })
    }
}

pub fn encode_token(id: i64, value: &OrderValue) -> String {
    match value {
        OrderValue::Int(value) => BASE64.encode(format!("{id}:{value}")),
        OrderValue::Text(value) => BASE64.encode(format!("{id}:{value}")),
    }
}

fn decode_token(token: &str, order: OrderColumn) -> Result<(i64, OrderValue)> {
    let invalid = |why: &str| Error::bad_request(format!("invalid nextPageToken: {why}"));
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid("too long"));
    }
    let bytes = BASE64.decode(token).map_err(|_| invalid("not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("not text"))?;
    let (id, value) = text.split_once(':').ok_or_else(|| invalid("no ':' separator"))?;
    let id = id.parse::<i32>().map_err(|_| invalid("bad id"))?;
    let value = match order {
        OrderColumn::Name => OrderValue::Text(value.to_owned()),
        _ => OrderValue::Int(value.parse::<i64>().map_err(|_| invalid("bad sort value"))?),
    };
    Ok((i64::from(id), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(token: &str) -> ListParams {
        ListParams { next_page_token: Some(token.into()), ..ListParams::default() }
    }

    #[test]
    fn tokens_round_trip_in_upstreams_format() {
        assert_eq!(encode_token(2, &OrderValue::Int(2)), "Mjoy");
        let page = Page::parse(&params(&encode_token(7, &OrderValue::Int(1_700_000_000_000)))).unwrap();
        assert_eq!(page.after, Some((7, OrderValue::Int(1_700_000_000_000))));
    }

    #[test]
    fn name_tokens_carry_the_name_and_only_the_ui_orders_by_name() {
        let token = encode_token(7, &OrderValue::Text("a:b ü".into()));
        let by_name = ListParams { by_name: true, next_page_token: Some(token.clone()), ..ListParams::default() };
        let page = Page::parse(&by_name).unwrap();
        assert_eq!((page.order, page.after), (OrderColumn::Name, Some((7, OrderValue::Text("a:b ü".into())))));
        // The REST API's orderBy=NAME is upstream's unknown value: id order, a name token refused.
        let rest = ListParams { order_by: Some("NAME".into()), next_page_token: Some(token), ..ListParams::default() };
        assert!(Page::parse(&rest).unwrap_err().to_string().contains("bad sort value"));
        let longest = encode_token(i64::from(i32::MAX), &OrderValue::Text("\u{10348}".repeat(255)));
        assert!(longest.len() <= MAX_TOKEN_LEN, "{}", longest.len());
    }

    #[test]
    fn bad_parameters_are_400s() {
        for token in ["!!!", "bm9jb2xvbg==", &BASE64.encode("x:1"), &"A".repeat(MAX_TOKEN_LEN + 4)] {
            let err = Page::parse(&params(token)).unwrap_err().to_string();
            assert!(err.starts_with("invalid nextPageToken"), "{token}: {err}");
        }
        let err = Page::parse(&ListParams { page_size: Some("x".into()), ..ListParams::default() }).unwrap_err();
        assert!(err.to_string().contains("invalid pageSize"));
    }

    #[test]
    fn lenient_ordering_and_empty_token() {
        let page = Page::parse(&ListParams {
            order_by: Some("NAME".into()),
            sort_order: Some("sideways".into()),
            next_page_token: Some(String::new()),
            page_size: Some("-3".into()),
            ..ListParams::default()
        })
        .unwrap();
        assert_eq!((page.order, page.descending, page.after, page.size), (OrderColumn::Id, false, None, -3));
    }
}
