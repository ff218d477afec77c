import { ConsumerId, Type } from '../../../src/index.ts'

/** Options every auth plugin takes. */
export const commonAuthOptions = {
  realm: Type.Optional(Type.String({
    minLength: 1, pattern: '^[\\x20-\\x7e]*$', default: 'portcullis', description: 'The realm named in WWW-Authenticate. Default "portcullis".'
  })),
  anonymous: Type.Optional(ConsumerId({
    description: 'Id of a consumer (under consumers:) that requests without any credential are admitted as, with x-anonymous-consumer: true. ' +
      'A wrong credential is still refused. Default: none (401).'
  }))
}
