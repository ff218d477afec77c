import { Type, type StringOptions } from '@sinclair/typebox'

/** The schema keyword that marks a plugin config value as a consumer id, checked against `consumers:` at load. */
export const CONSUMER_REF = 'x-portcullis-consumer'

/** Schema of a plugin config field naming a consumer: an unknown id is a config error at its line. */
export const ConsumerId = (options: StringOptions = {}) =>
  Type.String({ minLength: 1, description: 'The id of a consumer under consumers:.', ...options, [CONSUMER_REF]: true })
