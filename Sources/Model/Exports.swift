// Model's users get the shared support types (JSONValue, AtomicFile, SHA-256, bench measurements)
// with `import Model`, as before they moved to RondoSupport.

@_exported import RondoSupport
