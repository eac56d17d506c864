/*
 * Django's JavaScript catalog (jsi18n: gettext, interpolate) as module exports, with
 * pass-through fallbacks where the catalog is absent (Node tests, a page without it).
 */
const g = globalThis;

export const gettext = g.gettext || ((s) => s);

export const interpolate = g.interpolate || ((fmt, obj, named) =>
  named ? fmt.replace(/%\((\w+)\)s/g, (_, k) => String(obj[k])) : fmt.replace(/%s/g, () => String(obj.shift())));
