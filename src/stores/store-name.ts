import { Type, type StringOptions } from '@sinclair/typebox'

/** The schema keyword that marks a plugin config value as a store name, checked against `stores:` at load. */
export const STORE_REF = 'x-portcullis-store'

/** Schema of a plugin config field naming a store: an unknown name is a config error at its line. */
export const StoreName = (options: StringOptions = {}) =>
  Type.String({ minLength: 1, description: 'A store under stores: (memory always exists).', ...options, [STORE_REF]: true })
