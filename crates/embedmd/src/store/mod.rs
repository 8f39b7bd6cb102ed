//! The MLMD tables as the registry uses them: nodes (contexts, artifacts, executions) with
//! their typed and custom properties, and the links between them. Every statement is written
//! once; [`Dialect`] supplies table names and placeholders. Reads of many nodes cost two
//! queries (rows, then all their properties), never one per row.

mod delete;
mod filter;

use std::collections::{BTreeMap, HashMap};

use sqlx::FromRow;

pub use crate::arg::Arg;
use crate::conn::Statement;
pub use crate::conn::{query_totals, Conn, QueryKind};
pub use filter::{CmpOp, Column, Filter, FilterValue, SortKey, Target, ValueColumn};

use crate::dialect::{Dialect, Table};
use crate::error::{Error, Result};

/// Which of MLMD's three node tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Context,
    Artifact,
    Execution,
}

impl NodeKind {
    fn table(self) -> Table {
        match self {
            NodeKind::Context => Table::Context,
            NodeKind::Artifact => Table::Artifact,
            NodeKind::Execution => Table::Execution,
        }
    }

    fn property_table(self) -> Table {
        match self {
            NodeKind::Context => Table::ContextProperty,
            NodeKind::Artifact => Table::ArtifactProperty,
            NodeKind::Execution => Table::ExecutionProperty,
        }
    }

    /// The property table's column naming its node.
    fn owner_column(self) -> &'static str {
        match self {
            NodeKind::Context => "context_id",
            NodeKind::Artifact => "artifact_id",
            NodeKind::Execution => "execution_id",
        }
    }

    /// The integer state column: `Artifact.state`, `Execution.last_known_state`.
    fn state_column(self) -> Option<&'static str> {
        match self {
            NodeKind::Context => None,
            NodeKind::Artifact => Some("state"),
            NodeKind::Execution => Some("last_known_state"),
        }
    }
}

/// A property value as MLMD stores it (one of the value columns).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Double(f64),
    String(String),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// Typed (declared by the type, `is_custom_property = false`) and custom properties by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub typed: BTreeMap<String, Value>,
    pub custom: BTreeMap<String, Value>,
}

impl Properties {
    /// The properties of `self` that `before` lacks or holds another value of.
    pub fn changed_from(&self, before: &Properties) -> Properties {
        let changed = |now: &BTreeMap<String, Value>, then: &BTreeMap<String, Value>| {
            now.iter().filter(|(k, v)| then.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        Properties { typed: changed(&self.typed, &before.typed), custom: changed(&self.custom, &before.custom) }
    }

    /// Adds a property read back from its table (`is_custom_property` picks the map).
    fn insert(&mut self, custom: bool, name: String, value: Value) {
        let map = if custom { &mut self.custom } else { &mut self.typed };
        map.insert(name, value);
    }
}

/// A row of Context, Artifact or Execution with its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: i64,
    pub type_id: i64,
    pub name: Option<String>,
    pub external_id: Option<String>,
    /// Artifact only.
    pub uri: Option<String>,
    /// `Artifact.state` or `Execution.last_known_state`.
    pub state: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
    pub properties: Properties,
}

/// The main-table columns a write sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFields {
    pub type_id: i64,
    pub name: String,
    pub external_id: Option<String>,
    pub uri: Option<String>,
    pub state: Option<i64>,
}

/// Order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderColumn {
    Id,
    CreateTime,
    UpdateTime,
    /// The stored name. A context's is NOT NULL and unique within its type (MLMD's
    /// `UNIQUE(type_id, name)`), so a list of one context type is ordered by the name alone
    /// and pages after a name along that index.
    Name,
}

/// A row's value in a list's order: where a keyset page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderValue {
    Int(i64),
    Text(String),
}

impl From<OrderValue> for Arg {
    fn from(value: OrderValue) -> Arg {
        match value {
            OrderValue::Int(v) => Arg::from(v),
            OrderValue::Text(v) => Arg::from(v),
        }
    }
}

impl OrderColumn {
    fn column(self) -> &'static str {
        match self {
            OrderColumn::Id => "id",
            OrderColumn::CreateTime => "create_time_since_epoch",
            OrderColumn::UpdateTime => "last_update_time_since_epoch",
            OrderColumn::Name => "name",
        }
    }

    /// The value a page token records for `node`.
    pub fn value_of(self, node: &Node) -> OrderValue {
        match self {
            OrderColumn::Id => OrderValue::Int(node.id),
            OrderColumn::CreateTime => OrderValue::Int(node.create_time),
            OrderColumn::UpdateTime => OrderValue::Int(node.update_time),
            OrderColumn::Name => OrderValue::Text(node.name.clone().unwrap_or_default()),
        }
    }
}

/// Restricts a list to the children of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parent {
    /// Contexts whose ParentContext is this context.
    Context(i64),
    /// Artifacts attributed to this context.
    Attribution(i64),
    /// Executions associated with this context.
    Association(i64),
}

impl Parent {
    pub fn id(self) -> i64 {
        match self {
            Parent::Context(id) | Parent::Attribution(id) | Parent::Association(id) => id,
        }
    }

    /// The link table and its two columns, in the order [`Parent::child_first`] tells.
    fn link_columns(self) -> (Table, &'static str) {
        match self {
            Parent::Context(_) => (Table::ParentContext, "context_id, parent_context_id"),
            Parent::Attribution(_) => (Table::Attribution, "context_id, artifact_id"),
            Parent::Association(_) => (Table::Association, "context_id, execution_id"),
        }
    }

    /// Whether the link's first column is the child (ParentContext) or the parent.
    fn child_first(self) -> bool {
        matches!(self, Parent::Context(_))
    }
}

/// A node for [`Store::write_many`], created and last updated at `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNode {
    pub fields: NodeFields,
    pub properties: Properties,
    pub time: i64,
}

impl NewNode {
    /// A node as stored: to be written again, or copied.
    pub fn copy_of(node: &Node) -> NewNode {
        NewNode {
            fields: NodeFields {
                type_id: node.type_id,
                name: node.name.clone().unwrap_or_default(),
                external_id: node.external_id.clone(),
                uri: node.uri.clone(),
                state: node.state,
            },
            properties: node.properties.clone(),
            time: node.update_time,
        }
    }
}

/// Properties to set on a node that exists (the others it has are kept), and its new update
/// time: see [`Store::write_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct SetProperties {
    pub id: i64,
    pub time: i64,
    pub properties: Properties,
}

/// Where a new node hangs: the link to write and the types its parent context may have (the
/// parent must exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Under {
    pub parent: Parent,
    pub parent_types: Vec<i64>,
}

/// A page request, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub type_ids: Vec<i64>,
    pub parent: Option<Parent>,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub order: OrderColumn,
    pub descending: bool,
    /// Rows after this `(id, order value)`.
    pub after: Option<(i64, OrderValue)>,
    /// `None`: every row.
    pub limit: Option<u32>,
    /// Rows skipped before the page (MLflow's page tokens); `None` for keyset paging by `after`.
    pub offset: Option<u32>,
    /// A resolved `filterQuery`.
    pub filter: Option<Filter>,
    /// Terms ordering the list before `order` (which then breaks ties); such a list pages by
    /// `offset` only.
    pub sort: Vec<SortKey>,
}

impl ListQuery {
    /// Every row of `type_ids`, in id order: a list sets its own fields on top of this.
    pub fn of(type_ids: Vec<i64>) -> Self {
        ListQuery {
            type_ids,
            parent: None,
            name: None,
            external_id: None,
            order: OrderColumn::Id,
            descending: false,
            after: None,
            limit: None,
            offset: None,
            filter: None,
            sort: Vec::new(),
        }
    }
}

/// Property ids are bound in chunks this large; a page up to this size costs two queries.
const IN_CHUNK: usize = 10_000;

/// Names one [`Store::named`] statement binds (SQLite allows 32 766 binds, MySQL 65 535).
pub const NAMES_PER_READ: usize = 500;

/// Reads of at most this many nodes bring their properties in the same statement.
const JOINED_READ_MAX: usize = 2;

/// Bind values per property row.
const PROPERTY_COLUMNS: usize = 7;

/// The columns of a property row after its owner's id.
const PROPERTY_VALUE_COLUMNS: &str = "name, is_custom_property, int_value, double_value, string_value, bool_value";

/// Property rows per INSERT: 28 000 bind values, under SQLite's 32 766 (MySQL and PostgreSQL
/// allow 65 535), so a body with any number of custom properties is stored, and an MLflow
/// batch's hundreds of metrics in one statement.
const PROPERTY_ROWS_PER_INSERT: usize = 4000;

/// Nodes one [`Store::write_many`] statement writes (7 bind values each, and one name each in
/// the read of their ids, under [`NAMES_PER_READ`]).
const NODES_PER_INSERT: usize = NAMES_PER_READ;

/// Link rows per INSERT (two bind values each).
const LINKS_PER_INSERT: usize = 1000;

/// The key of a node just inserted.
#[derive(FromRow)]
struct Inserted {
    id: i64,
    type_id: i64,
    name: String,
}

#[derive(FromRow)]
struct NodeRow {
    id: i64,
    type_id: i64,
    name: Option<String>,
    external_id: Option<String>,
    uri: Option<String>,
    state: Option<i64>,
    create_time: i64,
    update_time: i64,
}

impl NodeRow {
    fn into_node(self, properties: Properties) -> Node {
        Node {
            id: self.id,
            type_id: self.type_id,
            name: self.name,
            external_id: self.external_id,
            uri: self.uri,
            state: self.state,
            create_time: self.create_time,
            update_time: self.update_time,
            properties,
        }
    }
}

/// A node's columns and one of its properties (all `None` for a node without any).
#[derive(FromRow)]
struct JoinedRow {
    #[sqlx(flatten)]
    node: NodeRow,
    property: Option<String>,
    is_custom: Option<bool>,
    #[sqlx(flatten)]
    value: ValueColumns,
}

#[derive(FromRow)]
struct PropertyRow {
    owner: i64,
    name: String,
    is_custom: bool,
    #[sqlx(flatten)]
    value: ValueColumns,
}

/// The value columns of a property row.
#[derive(FromRow)]
struct ValueColumns {
    int_value: Option<i64>,
    double_value: Option<f64>,
    string_value: Option<String>,
    byte_value: Option<Vec<u8>>,
    bool_value: Option<bool>,
}

impl ValueColumns {
    /// MLMD sets one value column; read them in upstream's order.
    fn value(self) -> Option<Value> {
        if let Some(v) = self.int_value {
            Some(Value::Int(v))
        } else if let Some(v) = self.string_value {
            Some(Value::String(v))
        } else if let Some(v) = self.bool_value {
            Some(Value::Bool(v))
        } else if let Some(v) = self.double_value {
            Some(Value::Double(v))
        } else {
            self.byte_value.map(Value::Bytes)
        }
    }
}

/// Node and link operations for one dialect.
#[derive(Debug, Clone, Copy)]
pub struct Store {
    dialect: Dialect,
}

impl Store {
    pub fn new(dialect: Dialect) -> Self {
        Store { dialect }
    }

    /// The select list of a node read as `n`.
    fn node_columns(&self, kind: NodeKind) -> String {
        let d = self.dialect;
        let uri = if kind == NodeKind::Artifact { "n.uri" } else { "NULL" };
        let state = kind.state_column().map_or("NULL".to_owned(), |c| d.as_i64(&format!("n.{c}")));
        format!(
            "{id} AS id, {type_id} AS type_id, n.name AS name, n.external_id AS external_id, \
             {uri} AS uri, {state} AS state, n.create_time_since_epoch AS create_time, \
             n.last_update_time_since_epoch AS update_time",
            id = d.as_i64("n.id"),
            type_id = d.as_i64("n.type_id"),
        )
    }

    /// Loads the properties of `rows` (one query per chunk of ids) and builds the nodes,
    /// keeping the rows' order.
    async fn with_properties(&self, conn: &mut Conn<'_>, kind: NodeKind, rows: Vec<NodeRow>) -> Result<Vec<Node>> {
        let mut properties: HashMap<i64, Properties> = HashMap::new();
        for chunk in rows.chunks(IN_CHUNK) {
            let ids: Vec<i64> = chunk.iter().map(|r| r.id).collect();
            let (sql, args) = self.properties_statement(kind, &ids);
            for row in conn.fetch_all::<PropertyRow>(&sql, &args).await? {
                if let Some(value) = row.value.value() {
                    properties.entry(row.owner).or_default().insert(row.is_custom, row.name, value);
                }
            }
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let props = properties.remove(&r.id).unwrap_or_default();
                r.into_node(props)
            })
            .collect())
    }

    /// The statement that reads the properties of the nodes `ids`, and its binds.
    pub fn properties_statement(&self, kind: NodeKind, ids: &[i64]) -> (String, Vec<Arg>) {
        let d = self.dialect;
        let (from, condition, args) = d.rows_by_keys(kind.property_table(), kind.owner_column(), "p", ids, 1);
        let sql = format!(
            "SELECT {owner} AS owner, p.name AS name, p.is_custom_property AS is_custom, {int} AS int_value, \
             p.double_value AS double_value, p.string_value AS string_value, p.byte_value AS byte_value, \
             p.bool_value AS bool_value FROM {from} WHERE {condition}",
            owner = d.as_i64(&format!("p.{}", kind.owner_column())),
            int = d.as_i64("p.int_value"),
        );
        (sql, args)
    }

    /// Nodes by id among `type_ids`, in id order; missing ids are simply absent.
    pub async fn get(&self, conn: &mut Conn<'_>, kind: NodeKind, type_ids: &[i64], ids: &[i64]) -> Result<Vec<Node>> {
        if ids.is_empty() || type_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, args) = self.get_statement(kind, type_ids, ids);
        if ids.len() <= JOINED_READ_MAX {
            return self.read_joined(conn, kind, &sql, &args, "n.id").await;
        }
        let rows = conn.fetch_all::<NodeRow>(&sql, &args).await?;
        self.with_properties(conn, kind, rows).await
    }

    /// The statement that reads the rows of [`Store::get`], and its binds.
    pub fn get_statement(&self, kind: NodeKind, type_ids: &[i64], ids: &[i64]) -> (String, Vec<Arg>) {
        let d = self.dialect;
        let (from, condition, mut args) = d.rows_by_keys(kind.table(), "id", "n", ids, 1);
        let types = d.unindexed(&format!("n.type_id IN ({})", d.placeholders(args.len() + 1, type_ids.len())));
        let sql = format!("SELECT {} FROM {from} WHERE {condition} AND {types} ORDER BY n.id", self.node_columns(kind));
        args.extend(type_ids.iter().map(|v| Arg::from(*v)));
        (sql, args)
    }

    /// The statement that reads the nodes of `nodes` (a statement selecting [`Store::node_columns`])
    /// with their properties, one row per property (or one without any), in `order`.
    pub fn joined_statement(&self, kind: NodeKind, nodes: &str, order: &str) -> String {
        let d = self.dialect;
        format!(
            "SELECT n.id, n.type_id, n.name, n.external_id, n.uri, n.state, n.create_time, n.update_time, \
             p.name AS property, p.is_custom_property AS is_custom, {int} AS int_value, p.double_value AS double_value, \
             p.string_value AS string_value, p.byte_value AS byte_value, p.bool_value AS bool_value \
             FROM ({nodes}) n {properties} ORDER BY {order}",
            int = d.as_i64("p.int_value"),
            properties = d.properties_of_each(kind.property_table(), kind.owner_column()),
        )
    }

    /// A read of a few nodes (a node or two, the params and metrics an MLflow log names): rows
    /// and properties in one statement (one round trip), since repeating so few rows' columns
    /// on each property row costs little.
    async fn read_joined(
        &self,
        conn: &mut Conn<'_>,
        kind: NodeKind,
        nodes: &str,
        args: &[Arg],
        order: &str,
    ) -> Result<Vec<Node>> {
        let sql = self.joined_statement(kind, nodes, order);
        let mut out: Vec<Node> = Vec::new();
        for JoinedRow { node, property, is_custom, value } in conn.fetch_all::<JoinedRow>(&sql, args).await? {
            if out.last().is_none_or(|n| n.id != node.id) {
                out.push(node.into_node(Properties::default()));
            }
            let node = out.last_mut().expect("pushed above");
            if let (Some(name), Some(custom)) = (property, is_custom) {
                if let Some(value) = value.value() {
                    node.properties.insert(custom, name, value);
                }
            }
        }
        Ok(out)
    }

    /// Whether a node of one of `type_ids` has this id (one probe of the primary key).
    pub async fn exists(&self, conn: &mut Conn<'_>, kind: NodeKind, type_ids: &[i64], id: i64) -> Result<bool> {
        let (sql, args) = self.exists_statement(kind, type_ids, id);
        Ok(conn.fetch_optional_i64(&sql, &args).await?.is_some())
    }

    /// The statement of [`Store::exists`], and its binds.
    pub fn exists_statement(&self, kind: NodeKind, type_ids: &[i64], id: i64) -> (String, Vec<Arg>) {
        let d = self.dialect;
        // The type test must not tempt the planner away from the primary key (see
        // `Dialect::unindexed`): through the type's index it would read every node of the type.
        let sql = format!(
            "SELECT {} FROM {} n WHERE n.id = {} AND {}",
            d.as_i64("n.id"),
            d.table(kind.table()),
            d.placeholder(1),
            d.unindexed(&format!("n.type_id IN ({})", d.placeholders(2, type_ids.len())))
        );
        (sql, std::iter::once(id).chain(type_ids.iter().copied()).map(Arg::from).collect())
    }

    /// Nodes of `type_ids` whose stored name or external id equals the given one (at most
    /// `limit` of them).
    pub async fn find(
        &self,
        conn: &mut Conn<'_>,
        kind: NodeKind,
        type_ids: &[i64],
        name: Option<&str>,
        external_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Node>> {
        let query = ListQuery {
            name: name.map(str::to_owned),
            external_id: external_id.map(str::to_owned),
            limit: Some(limit),
            ..ListQuery::of(type_ids.to_vec())
        };
        self.list(conn, kind, &query).await
    }

    /// Nodes of `type_ids` stored under any of `names`, with their properties, in id order:
    /// probes of the unique (type, name) key, one statement per [`NAMES_PER_READ`] names.
    pub async fn named(&self, conn: &mut Conn<'_>, kind: NodeKind, type_ids: &[i64], names: &[String]) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        if type_ids.is_empty() {
            return Ok(out);
        }
        for chunk in names.chunks(NAMES_PER_READ) {
            let (sql, args) = self.named_statement(kind, type_ids, chunk);
            out.extend(self.read_joined(conn, kind, &sql, &args, "n.id").await?);
        }
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    /// The statement of [`Store::named`] for one chunk of names, and its binds.
    pub fn named_statement(&self, kind: NodeKind, type_ids: &[i64], names: &[String]) -> (String, Vec<Arg>) {
        let (from, condition, args) = self.dialect.rows_by_names(kind.table(), "n", type_ids, names, 1);
        (format!("SELECT {} FROM {from} WHERE {condition}", self.node_columns(kind)), args)
    }

    /// One page of nodes: the page's rows along the index of its order (a fixed plan, bounded
    /// by the page and the share of rows that match, whatever the statistics say), then their
    /// properties by key.
    pub async fn list(&self, conn: &mut Conn<'_>, kind: NodeKind, query: &ListQuery) -> Result<Vec<Node>> {
        if query.type_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, args) = self.list_statement(kind, query);
        if query.sort.is_empty() && query.limit.is_some_and(|limit| limit as usize <= JOINED_READ_MAX) {
            let order = match (query.order, query.descending) {
                (OrderColumn::Id, false) => "n.id".to_owned(),
                (OrderColumn::Id, true) => "n.id DESC".to_owned(),
                (column, descending) => {
                    let alias = match column {
                        OrderColumn::CreateTime => "n.create_time",
                        OrderColumn::Name => "n.name",
                        _ => "n.update_time",
                    };
                    let dir = if descending { "DESC" } else { "ASC" };
                    format!("{alias} {dir}, n.id {dir}")
                }
            };
            return self.read_joined(conn, kind, &sql, &args, &order).await;
        }
        let rows = conn.fetch_all::<NodeRow>(&sql, &args).await?;
        self.with_properties(conn, kind, rows).await
    }

    /// The statement that reads a page's rows, and its binds.
    pub fn list_statement(&self, kind: NodeKind, query: &ListQuery) -> (String, Vec<Arg>) {
        let d = self.dialect;
        let mut args: Vec<Arg> = Vec::new();
        let next = |args: &mut Vec<Arg>, arg: Arg| {
            args.push(arg);
            d.placeholder(args.len())
        };
        let mut from = d.table(kind.table()).to_owned() + " n";
        let mut conditions = Vec::new();
        if let Some(parent) = query.parent {
            let (table, child, owner, id) = match parent {
                Parent::Context(id) => (Table::ParentContext, "context_id", "parent_context_id", id),
                Parent::Attribution(id) => (Table::Attribution, "artifact_id", "context_id", id),
                Parent::Association(id) => (Table::Association, "execution_id", "context_id", id),
            };
            from = d.children(kind.table(), table, child);
            conditions.push(format!("l.{owner} = {}", next(&mut args, Arg::from(id))));
        }
        let types: Vec<String> = query.type_ids.iter().map(|t| next(&mut args, Arg::from(*t))).collect();
        let by_type = format!("n.type_id IN ({})", types.join(", "));
        // One type by name: the (type_id, name) index gives the order, and names are unique
        // in it, so the name alone orders the rows.
        let by_name = query.order == OrderColumn::Name && query.type_ids.len() == 1;
        if let Some(name) = &query.name {
            conditions.push(format!("n.name = {}", next(&mut args, Arg::from(name.as_str()))));
        }
        if let Some(external_id) = &query.external_id {
            conditions.push(format!("n.external_id = {}", next(&mut args, Arg::from(external_id.as_str()))));
        }
        if let Some(filter) = &query.filter {
            let mut push = |arg: Arg| next(&mut args, arg);
            conditions.push(format!("({})", filter.render(d, kind, &mut push)));
        }
        // A parent's link, a name or an external id is a key that finds the few rows at once;
        // otherwise the rows come along the order's index, and nothing else may tempt the
        // planner away from it.
        let keyed = query.parent.is_some() || query.name.is_some() || query.external_id.is_some();
        // By name, that index is (type_id, name). SQLite and MySQL walk it given the type test
        // in sight (its text and binds first, for positional placeholders); PostgreSQL would
        // then read the type through its type_id index and sort it (no statistics), so there
        // the type is hidden too and a row comparison, which only that index serves, bounds it.
        let row_bound = by_name && !keyed && d.bounds_names_by_row();
        let type_shown = by_name && !keyed && !row_bound;
        if !type_shown {
            conditions.insert(usize::from(query.parent.is_some()), by_type.clone());
        }
        let all = conditions.join(" AND ");
        let mut condition = match (keyed, type_shown) {
            (true, _) => all,
            (false, false) => d.unindexed(&all),
            (false, true) if conditions.is_empty() => by_type,
            (false, true) => format!("{by_type} AND {}", d.unindexed(&all)),
        };
        let column = format!("n.{}", query.order.column());
        let (cmp, dir) = if query.descending { ("<", "DESC") } else { (">", "ASC") };
        if row_bound {
            // A first page starts before the type's first name ('' sorts first in every
            // collation) or, descending, before the next type's.
            let first = OrderValue::Text(String::new());
            let (t, start, cmp) = match (query.after.clone(), query.descending) {
                (Some((_, value)), _) => (query.type_ids[0], value, cmp),
                (None, false) => (query.type_ids[0], first, ">="),
                (None, true) => (query.type_ids[0] + 1, first, "<"),
            };
            let (t, v) = (next(&mut args, Arg::from(t)), next(&mut args, Arg::from(start)));
            condition = format!("{condition} AND (n.type_id, n.name) {cmp} ({t}, {v})");
        } else if let Some((id, value)) = query.after.clone() {
            // The bound on the order column alone is what an index on it can seek to.
            let range = match query.order {
                OrderColumn::Id => format!("n.id {cmp} {}", next(&mut args, Arg::from(id))),
                _ if by_name => format!("{column} {cmp} {}", next(&mut args, Arg::from(value))),
                _ => {
                    let v1 = next(&mut args, Arg::from(value.clone()));
                    let v2 = next(&mut args, Arg::from(value));
                    let i = next(&mut args, Arg::from(id));
                    format!("{column} {cmp}= {v1} AND ({column} {cmp} {v2} OR n.id {cmp} {i})")
                }
            };
            condition = format!("{condition} AND {range}");
        }
        // The id breaks ties, so pages are stable whatever the order column; names are unique
        // in one type.
        let mut order = match query.order {
            OrderColumn::Id => format!("n.id {dir}"),
            _ if row_bound => format!("n.type_id {dir}, {column} {dir}"),
            _ if by_name => format!("{column} {dir}"),
            _ => format!("{column} {dir}, n.id {dir}"),
        };
        if !query.sort.is_empty() {
            let mut terms = Vec::new();
            for key in &query.sort {
                let value = key.target.value(d, kind, &mut |arg| next(&mut args, arg));
                // Rendered once more only where the dialect needs it (after `value`'s binds).
                let again = || key.target.value(d, kind, &mut |arg| next(&mut args, arg));
                terms.push(d.nulls_last(&value, key.descending, again));
            }
            order = format!("{}, {order}", terms.join(", "));
        }
        let mut sql = format!("SELECT {} FROM {from} WHERE {condition} ORDER BY {order}", self.node_columns(kind));
        if let Some(limit) = query.limit {
            let p = next(&mut args, Arg::from(i64::from(limit)));
            sql.push_str(&format!(" LIMIT {p}"));
            if let Some(offset) = query.offset.filter(|o| *o > 0) {
                let p = next(&mut args, Arg::from(i64::from(offset)));
                sql.push_str(&format!(" OFFSET {p}"));
            }
        }
        (sql, args)
    }

    /// Inserts a node, its properties and, `under` a parent, the link to it; returns its id,
    /// or `None` when the parent does not exist (nothing is written then). The parent's
    /// existence is tested by the insert itself, and on PostgreSQL the whole write is one
    /// statement (data-modifying CTEs): a create costs one round trip there, three elsewhere.
    pub async fn insert(
        &self,
        conn: &mut Conn<'_>,
        kind: NodeKind,
        fields: &NodeFields,
        properties: &Properties,
        now: i64,
        under: Option<&Under>,
    ) -> Result<Option<i64>> {
        let d = self.dialect;
        let rows = property_rows(properties);
        let (node, mut args) = self.row_insert_statement(kind, fields, now, under);
        if d.writes_with_ctes() && rows.len() <= PROPERTY_ROWS_PER_INSERT {
            let mut sql = format!("WITH node AS ({node} RETURNING id)");
            if !rows.is_empty() {
                let values = property_values(d, rows.iter().map(|row| (None, row)), &mut args);
                sql.push_str(&format!(
                    ", properties AS (INSERT INTO {} ({}, {PROPERTY_VALUE_COLUMNS}) SELECT node.id, v.* FROM node, \
                     (VALUES {values}) AS v(name, is_custom_property, int_value, double_value, string_value, bool_value))",
                    d.table(kind.property_table()),
                    kind.owner_column(),
                ));
            }
            if let Some(under) = under {
                let (table, columns) = under.parent.link_columns();
                args.push(Arg::from(under.parent.id()));
                let parent = d.placeholder(args.len());
                let values = if under.parent.child_first() { format!("node.id, {parent}") } else { format!("{parent}, node.id") };
                sql.push_str(&format!(", link AS (INSERT INTO {} ({columns}) SELECT {values} FROM node)", d.table(table)));
            }
            sql.push_str(&format!(" SELECT {} FROM node", d.as_i64("id")));
            return Ok(conn.fetch_optional_i64(&sql, &args).await?);
        }
        let Some(id) = conn.insert_returning_id(&node, &args).await? else {
            return Ok(None);
        };
        let mut rest = self.property_inserts(kind, &owned_by(id, rows), false);
        if let Some(under) = under {
            rest.extend(self.link_statements(under.parent, &[id]));
        }
        conn.execute_all(rest).await?;
        Ok(Some(id))
    }

    /// The INSERT of a node's row, and its binds; under a parent it inserts only if the parent
    /// exists.
    pub fn row_insert_statement(
        &self,
        kind: NodeKind,
        fields: &NodeFields,
        now: i64,
        under: Option<&Under>,
    ) -> (String, Vec<Arg>) {
        let d = self.dialect;
        let mut args = Vec::new();
        let columns = row_values(kind, fields, now, &mut args);
        let values = d.placeholders(1, columns.len());
        let head = format!("INSERT INTO {} ({})", d.table(kind.table()), columns.join(", "));
        let sql = match under {
            None => format!("{head} VALUES ({values})"),
            Some(under) => {
                args.push(Arg::from(under.parent.id()));
                let id = d.placeholder(args.len());
                let types: Vec<String> = under
                    .parent_types
                    .iter()
                    .map(|t| {
                        args.push(Arg::from(*t));
                        d.placeholder(args.len())
                    })
                    .collect();
                // Every parent is a context, found by its primary key.
                format!(
                    "{head} SELECT {values} FROM {} p WHERE p.id = {id} AND {}",
                    d.table(Table::Context),
                    d.unindexed(&format!("p.type_id IN ({})", types.join(", ")))
                )
            }
        };
        (sql, args)
    }

    /// Inserts `new` nodes with their properties, each linked to `parent`, and sets properties
    /// of nodes that exist (`set`), in a fixed number of statements per chunk whatever their
    /// number: the update times of `set`, the new rows (on MySQL, which has no RETURNING, then
    /// a read of their ids by MLMD's unique (type, name)), every property row (an upsert: a row
    /// that exists is overwritten), the links; on SQLite in two calls (the update times with the
    /// rows, the rest together). Unlike [`Store::insert`], the parent's existence is not tested:
    /// the caller holds its lock. Returns the new nodes' ids in order.
    pub async fn write_many(
        &self,
        conn: &mut Conn<'_>,
        kind: NodeKind,
        parent: Parent,
        new: &[NewNode],
        set: &[SetProperties],
    ) -> Result<Vec<i64>> {
        let d = self.dialect;
        // Sent with the first INSERT (or the property rows), in one call where the driver
        // allows ([`Conn::execute_all`]); still in this order.
        let mut pending: Vec<Statement> = set.chunks(NODES_PER_INSERT).map(|chunk| update_times(d, kind, chunk)).collect();
        let mut ids = Vec::with_capacity(new.len());
        for chunk in new.chunks(NODES_PER_INSERT) {
            let mut args = Vec::with_capacity(chunk.len() * PROPERTY_COLUMNS);
            let mut rows = Vec::with_capacity(chunk.len());
            let mut columns = Vec::new();
            for node in chunk {
                let first = args.len() + 1;
                columns = row_values(kind, &node.fields, node.time, &mut args);
                rows.push(format!("({})", d.placeholders(first, columns.len())));
            }
            let sql = format!("INSERT INTO {} ({}) VALUES {}", d.table(kind.table()), columns.join(", "), rows.join(", "));
            let before = std::mem::take(&mut pending);
            let inserted = match d.keys_returning() {
                Some(returning) => conn.fetch_all_after::<Inserted>(before, (format!("{sql} {returning}"), args)).await?,
                None => {
                    conn.execute_all(before).await?;
                    conn.execute(&sql, &args).await?;
                    self.read_keys(conn, kind, chunk).await?
                }
            };
            let found: HashMap<(i64, String), i64> = inserted.into_iter().map(|r| ((r.type_id, r.name), r.id)).collect();
            for node in chunk {
                let key = (node.fields.type_id, node.fields.name.clone());
                // The unique key refused the insert otherwise.
                let id = found.get(&key).copied().ok_or(Error::Db(sqlx::Error::RowNotFound))?;
                ids.push(id);
            }
        }
        let properties: Vec<(i64, PropertyValue<'_>)> = ids
            .iter()
            .zip(new)
            .map(|(id, node)| (*id, &node.properties))
            .chain(set.iter().map(|node| (node.id, &node.properties)))
            .flat_map(|(id, properties)| property_rows(properties).into_iter().map(move |row| (id, row)))
            .collect();
        pending.extend(self.property_inserts(kind, &properties, true));
        pending.extend(self.link_statements(parent, &ids));
        conn.execute_all(pending).await?;
        Ok(ids)
    }

    /// The keys of nodes just inserted, found by their unique (type, name).
    async fn read_keys(&self, conn: &mut Conn<'_>, kind: NodeKind, nodes: &[NewNode]) -> Result<Vec<Inserted>> {
        let d = self.dialect;
        let mut types: Vec<i64> = nodes.iter().map(|n| n.fields.type_id).collect();
        types.sort_unstable();
        types.dedup();
        let names: Vec<String> = nodes.iter().map(|n| n.fields.name.clone()).collect();
        let (from, condition, args) = d.rows_by_names(kind.table(), "n", &types, &names, 1);
        let sql = format!(
            "SELECT {} AS id, {} AS type_id, n.name FROM {from} WHERE {condition}",
            d.as_i64("n.id"),
            d.as_i64("n.type_id")
        );
        Ok(conn.fetch_all::<Inserted>(&sql, &args).await?)
    }

    /// Rewrites a node's mutable columns and replaces all its properties.
    pub async fn update(
        &self,
        conn: &mut Conn<'_>,
        kind: NodeKind,
        id: i64,
        fields: &NodeFields,
        properties: &Properties,
        now: i64,
    ) -> Result<()> {
        let d = self.dialect;
        let mut sets =
            vec![format!("external_id = {}", d.placeholder(1)), format!("last_update_time_since_epoch = {}", d.placeholder(2))];
        let mut args = vec![Arg::from(fields.external_id.clone()), Arg::from(now)];
        if kind == NodeKind::Artifact {
            args.push(Arg::from(fields.uri.clone()));
            sets.push(format!("uri = {}", d.placeholder(args.len())));
        }
        if let Some(state) = kind.state_column() {
            args.push(Arg::from(fields.state));
            sets.push(format!("{state} = {}", d.placeholder(args.len())));
        }
        args.push(Arg::from(id));
        let sql = format!("UPDATE {} SET {} WHERE id = {}", d.table(kind.table()), sets.join(", "), d.placeholder(args.len()));
        let delete =
            format!("DELETE FROM {} WHERE {} = {}", d.table(kind.property_table()), kind.owner_column(), d.placeholder(1));
        let mut statements = vec![(sql, args), (delete, vec![Arg::from(id)])];
        statements.extend(self.property_inserts(kind, &owned_by(id, property_rows(properties)), false));
        Ok(conn.execute_all(statements).await?)
    }

    /// The INSERTs of property rows, each with its owner's id; with `overwrite`, a row that
    /// exists takes the new value, else it is a unique-key violation.
    fn property_inserts(&self, kind: NodeKind, rows: &[(i64, PropertyValue<'_>)], overwrite: bool) -> Vec<Statement> {
        let d = self.dialect;
        let overwriting = if overwrite { d.overwriting_property_values(kind.owner_column()) } else { String::new() };
        rows.chunks(PROPERTY_ROWS_PER_INSERT)
            .map(|chunk| {
                let mut args = Vec::with_capacity(chunk.len() * PROPERTY_COLUMNS);
                let values = property_values(d, chunk.iter().map(|(id, row)| (Some(*id), row)), &mut args);
                let sql = format!(
                    "INSERT INTO {} ({}, {PROPERTY_VALUE_COLUMNS}) VALUES {values} {overwriting}",
                    d.table(kind.property_table()),
                    kind.owner_column(),
                );
                (sql, args)
            })
            .collect()
    }

    /// Records that `child` belongs to the context `parent` (ParentContext, Attribution or
    /// Association); an existing link is kept.
    pub async fn link(&self, conn: &mut Conn<'_>, parent: Parent, child: i64) -> Result<()> {
        Ok(conn.execute_all(self.link_statements(parent, &[child])).await?)
    }

    /// The INSERTs linking each of `children` to `parent`, [`LINKS_PER_INSERT`] a statement;
    /// a link that exists is kept.
    fn link_statements(&self, parent: Parent, children: &[i64]) -> Vec<Statement> {
        let d = self.dialect;
        let (table, columns) = parent.link_columns();
        children
            .chunks(LINKS_PER_INSERT)
            .map(|chunk| {
                let args: Vec<Arg> = chunk
                    .iter()
                    .flat_map(|child| if parent.child_first() { [*child, parent.id()] } else { [parent.id(), *child] })
                    .map(Arg::from)
                    .collect();
                let pairs: Vec<String> = (0..chunk.len()).map(|i| format!("({})", d.placeholders(2 * i + 1, 2))).collect();
                let sql = d.insert_ignoring_duplicates(
                    &format!("INTO {} ({columns})", d.table(table)),
                    &format!("VALUES {}", pairs.join(", ")),
                );
                (sql, args)
            })
            .collect()
    }

    /// The parent context of each of `children` (ParentContext), one query per chunk.
    pub async fn parent_contexts(&self, conn: &mut Conn<'_>, children: &[i64]) -> Result<HashMap<i64, i64>> {
        #[derive(FromRow)]
        struct Link {
            child: i64,
            parent: i64,
        }
        let d = self.dialect;
        let mut parents = HashMap::new();
        for chunk in children.chunks(IN_CHUNK) {
            let (from, condition, args) = d.rows_by_keys(Table::ParentContext, "context_id", "l", chunk, 1);
            let sql = format!(
                "SELECT {} AS child, {} AS parent FROM {from} WHERE {condition}",
                d.as_i64("l.context_id"),
                d.as_i64("l.parent_context_id"),
            );
            parents.extend(conn.fetch_all::<Link>(&sql, &args).await?.into_iter().map(|l| (l.child, l.parent)));
        }
        Ok(parents)
    }

    /// The newest child (highest id) under each of `parents` through ParentContext (a model's
    /// latest version, an experiment's latest run): one grouped query per chunk, along the
    /// link table's parent index.
    pub async fn newest_children(&self, conn: &mut Conn<'_>, parents: &[i64]) -> Result<HashMap<i64, i64>> {
        #[derive(FromRow)]
        struct Newest {
            parent: i64,
            child: i64,
        }
        let d = self.dialect;
        let mut newest = HashMap::new();
        for chunk in parents.chunks(IN_CHUNK) {
            let (from, condition, args) = d.rows_by_keys(Table::ParentContext, "parent_context_id", "l", chunk, 1);
            let sql = format!(
                "SELECT {} AS parent, {} AS child FROM {from} WHERE {condition} GROUP BY l.parent_context_id",
                d.as_i64("l.parent_context_id"),
                d.as_i64("MAX(l.context_id)"),
            );
            newest.extend(conn.fetch_all::<Newest>(&sql, &args).await?.into_iter().map(|n| (n.parent, n.child)));
        }
        Ok(newest)
    }

    /// The artifacts of `type_ids` attributed to any of `parents` (contexts), at most `limit`,
    /// each with its parent's id: the rows in one query, then their properties.
    pub async fn attributed(
        &self,
        conn: &mut Conn<'_>,
        parents: &[i64],
        type_ids: &[i64],
        limit: u32,
    ) -> Result<Vec<(i64, Node)>> {
        #[derive(FromRow)]
        struct Attributed {
            #[sqlx(flatten)]
            node: NodeRow,
            parent: i64,
        }
        if parents.is_empty() || type_ids.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.dialect;
        let (from, condition, mut args) = d.rows_by_keys(Table::Attribution, "context_id", "l", parents, 1);
        let types = d.placeholders(args.len() + 1, type_ids.len());
        args.extend(type_ids.iter().map(|t| Arg::from(*t)));
        let sql = format!(
            "SELECT {columns}, {parent} AS parent FROM {from} JOIN {artifacts} n ON n.id = l.artifact_id \
             WHERE {condition} AND n.type_id IN ({types}) ORDER BY n.id LIMIT {limit}",
            columns = self.node_columns(NodeKind::Artifact),
            parent = d.as_i64("l.context_id"),
            artifacts = d.table(Table::Artifact),
            limit = d.placeholder(args.len() + 1),
        );
        args.push(Arg::from(i64::from(limit)));
        let rows = conn.fetch_all::<Attributed>(&sql, &args).await?;
        let parents: Vec<i64> = rows.iter().map(|r| r.parent).collect();
        let nodes = self.with_properties(conn, NodeKind::Artifact, rows.into_iter().map(|r| r.node).collect()).await?;
        Ok(parents.into_iter().zip(nodes).collect())
    }

    /// Takes the row lock of a node until the transaction ends, so that writes to it, or under
    /// it as a parent, happen one after another; nothing on SQLite, whose writers already do.
    /// A write statement rather than a locking read: on MySQL it does not start the
    /// transaction's snapshot, so reads after it see what the previous holder committed.
    pub async fn lock(&self, conn: &mut Conn<'_>, kind: NodeKind, id: i64) -> Result<()> {
        let d = self.dialect;
        if d.one_writer_at_a_time() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {} SET last_update_time_since_epoch = last_update_time_since_epoch WHERE id = {}",
            d.table(kind.table()),
            d.placeholder(1)
        );
        conn.execute(&sql, &[Arg::from(id)]).await?;
        Ok(())
    }
}

/// The UPDATE moving each of `nodes` to its update time.
fn update_times(d: Dialect, kind: NodeKind, nodes: &[SetProperties]) -> Statement {
    let mut args = Vec::with_capacity(nodes.len() * 3);
    let mut cases = String::new();
    for node in nodes {
        args.extend([Arg::from(node.id), Arg::from(node.time)]);
        cases.push_str(&format!(" WHEN {} THEN {}", d.placeholder(args.len() - 1), d.placeholder(args.len())));
    }
    let first = args.len() + 1;
    args.extend(nodes.iter().map(|node| Arg::from(node.id)));
    let sql = format!(
        "UPDATE {} SET last_update_time_since_epoch = CASE id{cases} END WHERE id IN ({})",
        d.table(kind.table()),
        d.placeholders(first, nodes.len())
    );
    (sql, args)
}

/// The columns of a node's row, their values appended to `args`.
fn row_values(kind: NodeKind, fields: &NodeFields, now: i64, args: &mut Vec<Arg>) -> Vec<&'static str> {
    let mut columns = vec!["type_id", "name", "external_id", "create_time_since_epoch", "last_update_time_since_epoch"];
    args.extend([
        Arg::from(fields.type_id),
        Arg::from(fields.name.as_str()),
        Arg::from(fields.external_id.clone()),
        Arg::from(now),
        Arg::from(now),
    ]);
    if kind == NodeKind::Artifact {
        columns.push("uri");
        args.push(Arg::from(fields.uri.clone()));
    }
    if let Some(state) = kind.state_column() {
        columns.push(state);
        args.push(Arg::from(fields.state));
    }
    columns
}

/// A property to write: name, whether custom, value. Bytes are never written by the registry.
type PropertyValue<'a> = (&'a str, bool, &'a Value);

fn property_rows(properties: &Properties) -> Vec<PropertyValue<'_>> {
    properties
        .typed
        .iter()
        .map(|(k, v)| (k.as_str(), false, v))
        .chain(properties.custom.iter().map(|(k, v)| (k.as_str(), true, v)))
        .filter(|(_, _, v)| !matches!(v, Value::Bytes(_)))
        .collect()
}

/// Each of `rows` with the id of its owner, `id`.
fn owned_by(id: i64, rows: Vec<PropertyValue<'_>>) -> Vec<(i64, PropertyValue<'_>)> {
    rows.into_iter().map(|row| (id, row)).collect()
}

/// `(...), (...)` for `rows`, their binds pushed onto `args`; each row starts with its owner's
/// id when given (else the caller's SELECT supplies it).
fn property_values<'a, 'b: 'a>(
    d: Dialect,
    rows: impl Iterator<Item = (Option<i64>, &'a PropertyValue<'b>)>,
    args: &mut Vec<Arg>,
) -> String {
    let mut values = Vec::new();
    for (owner, (name, custom, value)) in rows {
        let first = args.len() + 1;
        if let Some(owner) = owner {
            args.push(Arg::from(owner));
        }
        let (int, double, string, boolean) = match value {
            Value::Int(v) => (Some(*v), None, None, None),
            Value::Double(v) => (None, Some(*v), None, None),
            Value::String(v) => (None, None, Some(v.clone()), None),
            Value::Bool(v) => (None, None, None, Some(*v)),
            Value::Bytes(_) => unreachable!("property_rows leaves bytes out"),
        };
        args.extend([
            Arg::from(*name),
            Arg::from(*custom),
            Arg::Int(int),
            Arg::Double(double),
            Arg::Text(string),
            Arg::Bool(boolean),
        ]);
        values.push(format!("({})", d.placeholders(first, args.len() + 1 - first)));
    }
    values.join(", ")
}
