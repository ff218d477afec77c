import { Type, type Static } from '@sinclair/typebox'
import { TOKEN } from '../../src/index.ts'

const Token = Type.String({ pattern: TOKEN, errorMessage: 'must be a method or header name' })

export const DEFAULTS = {
  methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'],
  exposeHeaders: [] as string[],
  credentials: false,
  maxAge: 600
}

export const CorsSchema = Type.Object({
  origins: Type.Array(Type.String({ minLength: 1 }), {
    minItems: 1,
    description: 'Origins allowed: exact (https://app.example.com), `*` for any, wildcards (*.example.com, https://*.example.com) or regular expressions between slashes (/^https:\\/\\/pr-\\d+\\.example\\.dev$/).'
  }),
  methods: Type.Optional(Type.Array(Token, { default: DEFAULTS.methods, description: 'Methods a preflight allows (Access-Control-Allow-Methods), in any case: sent upper-case, as browsers compare them.' })),
  headers: Type.Optional(Type.Array(Token, { description: 'Request headers a preflight allows. Default: those the preflight asks for (Access-Control-Request-Headers).' })),
  exposeHeaders: Type.Optional(Type.Array(Token, { default: DEFAULTS.exposeHeaders, description: 'Response headers scripts may read (Access-Control-Expose-Headers).' })),
  credentials: Type.Optional(Type.Boolean({ default: DEFAULTS.credentials, description: 'Allow cookies and credentials. The origin is then echoed, never `*`.' })),
  maxAge: Type.Optional(Type.Integer({ minimum: 0, default: DEFAULTS.maxAge, description: 'Seconds a browser may cache a preflight answer (Access-Control-Max-Age).' }))
}, { additionalProperties: false })

export type CorsConfig = Static<typeof CorsSchema>
