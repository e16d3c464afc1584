// Request validation with the contracts' TypeBox validators instead of Fastify's Ajv defaults, which
// would silently drop unknown fields (removeAdditional) and coerce types: here an unknown field, a
// string for a number or a NaN is a 400 that names the field. Query strings, params and headers are
// text, so they are converted to the schema's types first.
import { compiledSchema, schemaErrors } from '@rlhf/contracts';
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const validator = compiledSchema(schema);
  return (input: unknown) => {
    const value = httpPart === 'body' ? input : Value.Convert(schema, { ...(input as object) });
    if (validator.Check(value)) return { value };
    const error = schemaErrors(schema, value).map((e) => ({
      keyword: 'schema',
      instancePath: e.path,
      schemaPath: '',
      params: {},
      message: e.message,
    }));
    return { error };
  };
};

/**
 * Handlers build every response from typed views (the type provider checks them against the route's
 * response schema), so plain JSON.stringify serializes them; the schemas document the API.
 */
export const serializerCompiler: FastifySerializerCompiler<unknown> = () => (data) => JSON.stringify(data);
