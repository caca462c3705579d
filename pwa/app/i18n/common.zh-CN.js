// 与 common.en.js 相同的键：语言选择与无障碍相关的全局文字。
export default {
  'mutation.user.set_locale': '语言',
  'skip.to_main': '跳到正文',
  'status.connection': '网络连接',
  'outbox.change': '{label}：{detail}',
};
