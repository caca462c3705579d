// A screen whose module loads when it is first shown (`import()`), so a device compiles at
// start only the screens its own people use. The service worker stores every module of the
// build, so a lazy screen opens offline too.
import { useEffect, useState } from 'preact/hooks';
import { html } from '../html.js';
import { ScreenLoading } from './loading.js';

export function lazy(load, name) {
  let Component = null;
  let loading = null;
  return function LazyScreen(props) {
    const [, setLoaded] = useState(false);
    useEffect(() => {
      if (Component) return undefined;
      let current = true;
      loading ??= load().then((module) => {
        Component = module[name];
      });
      loading.then(() => current && setLoaded(true));
      return () => {
        current = false;
      };
    }, []);
    return Component ? html`<${Component} ...${props} />` : html`<${ScreenLoading} />`;
  };
}
