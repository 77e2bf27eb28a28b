// Drives Backstage's own catalog client (@backstage/catalog-client, pinned in
// package-lock.json) against a Heimdall hub: HUB is its base URL, TOKEN an API
// token. Prints one JSON object with what each call returned; the Rust test
// asserts on it. Any call that throws fails the script with the error.
import { CatalogClient } from '@backstage/catalog-client';

const hub = process.env.HUB;
const token = process.env.TOKEN;
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${hub}/api/catalog` },
});
const options = { token };

const names = (items) => items.map((e) => (e ? `${e.kind}:${e.metadata.namespace ?? 'default'}/${e.metadata.name}` : null));

const listed = await client.getEntities(
  { filter: { kind: 'Component' }, fields: ['kind', 'metadata.name', 'metadata.namespace'], order: { field: 'metadata.name', order: 'asc' } },
  options,
);
const firstPage = await client.queryEntities(
  { filter: { kind: 'Component' }, limit: 2, orderFields: { field: 'metadata.name', order: 'asc' } },
  options,
);
const secondPage = await client.queryEntities({ cursor: firstPage.pageInfo.nextCursor, limit: 2 }, options);
const searched = await client.queryEntities(
  { filter: { kind: 'Component' }, fullTextFilter: { term: 'storefront' } },
  options,
);
// A predicate query goes by POST; its cursor (which holds the query) is sent back by POST too.
const predicateFirst = await client.queryEntities(
  { query: { $all: [{ kind: 'component' }, { 'metadata.namespace': { $in: ['shop'] } }] }, limit: 2, orderFields: { field: 'metadata.name', order: 'asc' } },
  options,
);
const predicateSecond = await client.queryEntities({ cursor: predicateFirst.pageInfo.nextCursor, limit: 2 }, options);
const storefront = await client.getEntityByRef('component:shop/storefront', options);
const missing = await client.getEntityByRef('component:shop/ghost', options);
const byRefs = await client.getEntitiesByRefs({ entityRefs: ['group:default/shop', 'component:shop/ghost'] }, options);
const facets = await client.getEntityFacets({ facets: ['kind'] }, options);
const valid = await client.validateEntity(
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'fine' }, spec: { type: 'service', lifecycle: 'production', owner: 'shop' } },
  'url:https://git.example.com/fine/catalog-info.yaml',
  options,
);
const invalid = await client.validateEntity(
  { apiVersion: 'backstage.io/v1alpha1', kind: 'Component', metadata: { name: 'not fine' }, spec: { type: 'service' } },
  'url:https://git.example.com/bad/catalog-info.yaml',
  options,
);

console.log(JSON.stringify({
  listed: names(listed.items),
  firstPage: { items: names(firstPage.items), totalItems: firstPage.totalItems, hasNext: Boolean(firstPage.pageInfo.nextCursor) },
  secondPage: { items: names(secondPage.items), hasPrev: Boolean(secondPage.pageInfo.prevCursor) },
  searched: names(searched.items),
  predicate: { first: names(predicateFirst.items), second: names(predicateSecond.items), total: predicateFirst.totalItems },
  storefront: { ref: names([storefront])[0], annotation: storefront?.metadata.annotations?.['heimdall.dev/application'], relations: storefront?.relations ?? [] },
  missing: missing === undefined,
  byRefs: names(byRefs.items),
  facets: facets.facets,
  valid,
  invalid: { valid: invalid.valid, errors: (invalid.errors ?? []).map((e) => e.message) },
}));
