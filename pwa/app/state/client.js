// The one sync client of this page (pwa/app/sync/ owns the engine; views never import it).
import { createSyncClient } from '../sync/index.js';

export { newId } from '../sync/index.js';

export const client = createSyncClient();
