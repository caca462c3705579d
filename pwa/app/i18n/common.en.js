// Strings of the app-wide pieces added with the language choice and the accessibility pass.
export default {
  'mutation.user.set_locale': 'Language',
  'skip.to_main': 'Skip to content',
  'status.connection': 'Connection',
  'outbox.change': '{label}: {detail}',
};
