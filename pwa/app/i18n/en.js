// English strings. Keys are grouped by screen; `{name}` marks a value filled in by `t`.
// A value that is an object is chosen by plural category (Intl.PluralRules) of `count`.
export default {
  'app.name': 'Loopline',
  'app.loading': 'Loading…',

  'lang.label': 'Language',

  'nav.label': 'Main',
  'nav.batches': 'Batches',
  'nav.threads': 'Threads',
  'nav.cases': 'Cases',
  'nav.overview': 'Overview',
  'nav.portal': 'Portal',

  'screen.later': 'This screen arrives in a coming version. What you have already captured is kept on this device.',

  'time.under_a_minute': 'under 1 min',

  'status.label': 'Sync status',
  'status.online': 'Online',
  'status.offline': 'Offline',
  'status.unsent.label': 'Unsent changes',
  'status.unsent.none': 'All changes sent',
  'status.unsent.some': {
    one: '{count} unsent change, oldest {age}',
    other: '{count} unsent changes, oldest {age}',
  },
  'status.photos': {
    one: '{count} photo waiting to upload',
    other: '{count} photos waiting to upload',
  },
  'status.rejected': {
    one: '{count} change refused by the server',
    other: '{count} changes refused by the server',
  },
  'status.synced.never': 'Not synced yet',
  'status.synced.now': 'Synced just now',
  'status.synced.ago': 'Synced {ago}',

  'update.ready': 'A new version of Loopline is ready.',
  'update.apply': 'Update',

  'signin.title': 'Sign in to Loopline',
  'signin.username': 'Username',
  'signin.password': 'Password',
  'signin.submit': 'Sign in',
  'signin.busy': 'Signing in…',
  'signin.offline.notice': 'You are offline. Signing in for the first time on this device needs a connection to the server.',
  'signin.error.invalid_credentials': 'Wrong username or password. Check both and try again.',
  'signin.error.rate_limited': 'Too many sign-in attempts. Wait a few minutes, then try again.',
  'signin.error.rate_limited_wait': {
    one: 'Too many sign-in attempts. Try again in {count} minute.',
    other: 'Too many sign-in attempts. Try again in {count} minutes.',
  },
  'signin.error.offline': 'You are offline, and this device has not signed in before. Connect to the network and try again.',
  'signin.error.server_error': 'The server could not sign you in just now. Try again in a moment.',
  'signin.error.missing': 'Enter your username and password.',

  'signout.button': 'Sign out',
  'signout.confirm.title': 'Sign out with unsent changes?',
  'signout.confirm.body': {
    one: '{count} change made on this device has not reached the server. Nobody else sees it until it is sent.',
    other: '{count} changes made on this device have not reached the server. Nobody else sees them until they are sent.',
  },
  'signout.confirm.loss': 'After signing out they wait on this device and are sent only when you sign in here again. If this device is lost or reset, or its browser data is cleared before then, they are lost.',
  'signout.confirm.hint': 'Better: stay signed in and connect to the network so they are sent first.',
  'signout.confirm.stay': 'Stay signed in',
  'signout.confirm.discard': 'Sign out anyway',
  'signout.error': 'Signing out failed. Try again.',

  'role.inspector': 'Inspector',
  'role.service_rep': 'Service rep',
  'role.supervisor': 'Supervisor',
  'role.admin': 'Administrator',
  'role.customer': 'Customer',
};
