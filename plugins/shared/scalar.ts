import { Type } from '../../src/index.ts'

/**
 * A string, a number or a boolean, kept as written: one schema of three types, which Ajv coerces
 * only when the value has none of them. (A union of the three would coerce in its first branch:
 * `true` and `5` made "true" and "5", matching no boolean or number claim.) In an anyOf of its own
 * for its message: a type error's would read "a string,number,boolean".
 */
export const Scalar = Type.Unsafe<string | number | boolean>({
  anyOf: [{ type: ['string', 'number', 'boolean'] }],
  errorMessage: 'must be a string, a number, true or false'
})
