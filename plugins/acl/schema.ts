import { Type } from '../../src/index.ts'

const Who = (description: string) => Type.Object({
  groups: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Consumer groups (consumers[].groups, or a JWT groupsClaim).' })),
  consumers: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Consumer ids.' }))
}, { additionalProperties: false, description })

export const AclSchema = Type.Object({
  allow: Type.Optional(Who('Only these may pass (any listed group or id). Default: everyone not denied.')),
  deny: Type.Optional(Who('These may not pass, even when allowed.'))
}, {
  additionalProperties: false,
  anyOf: ['allow', 'deny'].map(key => ({ required: [key], properties: { [key]: {} } })),
  errorMessage: 'needs allow or deny'
})
