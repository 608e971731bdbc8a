import { type Class, registerErrorClass } from './metadata';

/**
 * Registers an error class by its name: when a handler throws it, the caller gets an
 * instance of the same class back, with its own enumerable properties restored.
 */
export function RpcError(): ClassDecorator {
  return (target) => {
    const cls = target as unknown as Class<Error>;
    if (!(cls.prototype instanceof Error)) throw new TypeError(`@RpcError on ${cls.name}: the class must extend Error`);
    registerErrorClass(cls);
  };
}
