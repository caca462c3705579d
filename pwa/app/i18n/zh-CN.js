// 简体中文。键与 en.js 相同；缺少的键回退到英文。
export default {
  'app.name': 'Loopline',
  'app.loading': '正在加载…',

  'lang.label': '语言',

  'nav.label': '主导航',
  'nav.batches': '批次',
  'nav.threads': '会话',
  'nav.cases': '客户案例',
  'nav.overview': '总览',
  'nav.portal': '客户门户',

  'screen.later': '此页面将在后续版本中提供。您已记录的内容会保存在本设备上。',

  'time.under_a_minute': '不到 1 分钟',

  'status.label': '同步状态',
  'status.online': '在线',
  'status.offline': '离线',
  'status.unsent.label': '未发送的更改',
  'status.unsent.none': '所有更改已发送',
  'status.unsent.some': { other: '{count} 项更改未发送，最早的已等待 {age}' },
  'status.photos': { other: '{count} 张照片等待上传' },
  'status.rejected': { other: '{count} 项更改被服务器拒绝' },
  'status.synced.never': '尚未同步',
  'status.synced.now': '刚刚已同步',
  'status.synced.ago': '{ago}已同步',

  'update.ready': 'Loopline 有新版本可用。',
  'update.apply': '更新',

  'signin.title': '登录 Loopline',
  'signin.username': '用户名',
  'signin.password': '密码',
  'signin.submit': '登录',
  'signin.busy': '正在登录…',
  'signin.offline.notice': '您当前处于离线状态。在本设备上首次登录需要连接服务器。',
  'signin.error.invalid_credentials': '用户名或密码错误，请检查后重试。',
  'signin.error.rate_limited': '登录尝试次数过多，请等待几分钟后再试。',
  'signin.error.rate_limited_wait': { other: '登录尝试次数过多，请在 {count} 分钟后重试。' },
  'signin.error.offline': '您当前处于离线状态，且本设备从未登录过。请连接网络后重试。',
  'signin.error.server_error': '服务器暂时无法完成登录，请稍后重试。',
  'signin.error.missing': '请输入用户名和密码。',

  'signout.button': '退出登录',
  'signout.confirm.title': '有未发送的更改，仍要退出登录吗？',
  'signout.confirm.body': { other: '本设备上有 {count} 项更改尚未到达服务器。发送之前，其他人看不到这些更改。' },
  'signout.confirm.loss': '退出登录后，这些更改会保留在本设备上，只有当您再次在本设备登录时才会发送。如果在此之前设备丢失、被重置或浏览器数据被清除，这些更改将会丢失。',
  'signout.confirm.hint': '建议：保持登录并连接网络，先将更改发送出去。',
  'signout.confirm.stay': '保持登录',
  'signout.confirm.discard': '仍然退出',
  'signout.error': '退出登录失败，请重试。',

  'role.inspector': '检验员',
  'role.service_rep': '客服代表',
  'role.supervisor': '主管',
  'role.admin': '管理员',
  'role.customer': '客户',
};
