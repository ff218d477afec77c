import { Type, type Static } from '@sinclair/typebox'

export const DEFAULTS = { status: 302, keepQuery: true }

export const RedirectSchema = Type.Object({
  to: Type.String({
    pattern: '^(https?://[^/?#\\s]+)?/[^\\s]*$',
    errorMessage: 'must be an absolute URL (https://host/path) or a path starting with /',
    description: 'The Location, with the route\'s params: `https://new.example.com/v2/users/:id/*` (`:name` for a param, `*` for the rest of a prefix match; `\\:` and `\\*` for a literal `:` or `*`). Params and `*` only after the host: a request never chooses it. A non-ASCII host is sent as punycode, other text a URI may not hold percent-encoded (UTF-8).'
  }),
  status: Type.Optional(Type.Union([301, 302, 303, 307, 308].map(s => Type.Literal(s)), { default: DEFAULTS.status, description: '301 or 308 permanent, 302, 303 or 307 temporary (307 and 308 keep the method and body).' })),
  keepQuery: Type.Optional(Type.Boolean({ default: DEFAULTS.keepQuery, description: 'Append the request\'s query string to the Location (after the template\'s own, with &; before its #fragment).' }))
}, { additionalProperties: false })

export type RedirectConfig = Static<typeof RedirectSchema>
