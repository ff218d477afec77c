import { Type, type Static } from '@sinclair/typebox'

const Entry = Type.String({
  pattern: '^[0-9a-fA-F:.]+(%[^/]+)?(/\\d{1,3})?$',
  errorMessage: 'must be an IPv4 or IPv6 address or CIDR range, such as 10.0.0.0/8 or 2001:db8::/32'
})

export const IpFilterSchema = Type.Object({
  allow: Type.Optional(Type.Array(Entry, { description: 'When not empty, only client addresses in these addresses and ranges pass.' })),
  deny: Type.Optional(Type.Array(Entry, { description: 'Client addresses in these addresses and ranges are refused; deny wins over allow.' }))
}, { additionalProperties: false, minProperties: 1, errorMessage: 'needs allow or deny' })

export type IpFilterConfig = Static<typeof IpFilterSchema>
